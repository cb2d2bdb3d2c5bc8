"""A multi-agent document pipeline under a supervision tree: triactor's main example.

    python -m examples.pipeline [--items 400] [--seed 1] [--quiet] [--verbose]

The agents:

- ``source`` emits documents into bounded mailboxes: when the fetchers fall behind, its
  ``tell`` waits (backpressure), and the report shows for how long.
- ``fetchers`` is a router in front of four I/O-bound fetchers (a simulated HTTP call of
  5-20 ms each) that run concurrently; each document goes to the least busy one.
- ``parser`` is flaky: about 10% of documents are corrupt and crash it. Its supervisor
  restarts it (with backoff) and the documents queued behind the crash are not lost; each
  corrupt document goes to dead letters.
- ``scorer`` is CPU-heavy: a router of one scorer per core, each running its pure-Python work
  in a worker process (``triactor.run_in_process``), so the scoring uses every core while the
  loop and every other agent keep going. ``python -m examples.scale_out`` measures this stage
  on its own.
- ``enrich-urgent`` and ``enrich-bulk`` call a rate-limited API, shared through one
  ``PriorityPool``: urgent documents are served first, bulk ones still get their share.
- ``sink`` counts what came out and publishes each finished document on the ``done`` topic.
- ``monitor`` subscribes to ``done`` and, on a timer, shows the progress; it stops itself once
  every document has come out (or gone to dead letters), which ends the run.

It prints live progress and ends with a report. Everything runs in-process on the embedded
actor system; no server is needed.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
import random
import sys
import time
from collections import Counter
from typing import TYPE_CHECKING

import attrs
import trio
from loguru import logger

import triactor
from triactor import (
    Actor,
    ActorRef,
    Backoff,
    ChildSpec,
    DeadLetterReason,
    PriorityPool,
    Router,
    RouterRef,
    Routing,
    Strategy,
    Supervisor,
    handler,
    open_actor_system,
    run_in_process,
)
from triactor.launcher import StatusLine

if TYPE_CHECKING:
    from loguru import Record

FETCHERS = 4
SCORERS = os.cpu_count() or 2  # one per core: the scoring runs in worker processes


@attrs.frozen
class Document:
    """A document travelling through the pipeline."""

    id: int
    urgent: bool
    corrupt: bool
    text: str = ""
    score: int = 0


@attrs.frozen
class Emit:
    """Tells the source to emit ``count`` documents."""

    count: int
    seed: int


@attrs.frozen
class Report:
    """Asks an agent for its counters."""


@attrs.frozen
class ShowProgress:
    """The monitor's timer message: show the progress, stop when everything is through."""


class Source(Actor):
    """Emits documents to the fetchers' router; waits when every fetcher's mailbox is full."""

    def __init__(self) -> None:
        self.emitted = 0
        self.blocked_seconds = 0.0

    @handler
    async def emit(self, msg: Emit) -> None:
        rng = random.Random(msg.seed)
        fetchers = self.system.lookup("fetchers")  # one ref in front of all the fetchers
        for n in range(msg.count):
            doc = Document(n, urgent=rng.random() < 0.2, corrupt=rng.random() < 0.1)
            before = trio.current_time()
            await fetchers.tell(doc)  # to the least busy fetcher; waits while all are full
            self.blocked_seconds += trio.current_time() - before
            self.emitted += 1

    @handler
    async def report(self, msg: Report) -> dict[str, float]:
        return {"emitted": self.emitted, "blocked_seconds": self.blocked_seconds}


class Fetcher(Actor):
    """I/O-bound: fetches each document's text (a simulated 5-20 ms HTTP call)."""

    mailbox_capacity = 8

    async def on_start(self) -> None:
        self.parser = self.system.lookup("parser")
        self.rng = random.Random(self.name)

    @handler
    async def fetch(self, doc: Document) -> None:
        await trio.sleep(self.rng.uniform(0.005, 0.020))
        await self.parser.tell(attrs.evolve(doc, text=f"document {doc.id} " * 20))


class Parser(Actor):
    """Flaky: crashes on corrupt documents. Its supervisor restarts it; the queue survives."""

    mailbox_capacity = 64

    async def on_start(self) -> None:
        self.scorer = self.system.lookup("scorer")

    @handler
    async def parse(self, doc: Document) -> None:
        if doc.corrupt:
            raise ValueError(f"document {doc.id} is corrupt")
        await self.scorer.tell(doc)


def score_text(text: str) -> int:
    """The CPU-heavy step: pure Python, so it would stall the loop (or hog the GIL from a
    thread) if it ran in this process. A module-level function, so a worker process can
    import it."""
    digest = text.encode()
    for _ in range(2_000):
        digest = hashlib.sha256(digest).digest()
    return digest[0]


class Scorer(Actor):
    """Scores each document on another core, then sends it on to the right enricher."""

    mailbox_capacity = 16

    async def on_start(self) -> None:
        self.urgent = self.system.lookup("enrich-urgent")
        self.bulk = self.system.lookup("enrich-bulk")

    @handler
    async def score(self, doc: Document) -> None:
        score = await run_in_process(score_text, doc.text)  # a worker process does the work
        target = self.urgent if doc.urgent else self.bulk
        await target.tell(attrs.evolve(doc, score=score))


class Enricher(Actor):
    """Calls a rate-limited API through the shared pool, at its class's priority."""

    mailbox_capacity = 256
    max_concurrency = 8  # many calls in flight; the pool decides who goes first

    def __init__(self, api: PriorityPool) -> None:
        self.api = api

    async def on_start(self) -> None:
        self.sink = self.system.lookup("sink")

    @handler
    async def enrich(self, doc: Document) -> None:
        async with self.api.acquire():  # the priority comes from the actor's class
            await trio.sleep(0.020)  # the API call
        await self.sink.tell(doc)


class UrgentEnricher(Enricher):
    priority = "urgent"


class BulkEnricher(Enricher):
    priority = "bulk"


class Sink(Actor):
    """Counts the documents that made it through."""

    def __init__(self) -> None:
        self.done: Counter[str] = Counter()

    @handler
    async def collect(self, doc: Document) -> None:
        self.done["urgent" if doc.urgent else "bulk"] += 1
        await self.system.publish("done", doc)  # to whoever follows the pipeline

    @handler
    async def report(self, msg: Report) -> dict[str, int]:
        return dict(self.done)


class Monitor(Actor):
    """Follows the ``done`` topic; every 0.1 s (a timer) shows the progress; stops at the end."""

    def __init__(self, items: int, display: Progress | None) -> None:
        self.items = items
        self.display = display
        self.done = 0

    async def on_start(self) -> None:
        self.system.subscribe(self.ref, "done")
        self.parser = self.system.lookup("parser")
        self.timers.every("show", ShowProgress(), interval=0.1)

    @handler
    async def finished(self, doc: Document) -> None:
        self.done += 1

    @handler
    async def show(self, msg: ShowProgress) -> None:
        lost = self.system.dead_letters.count
        if self.display is not None:
            parser = self.parser.statistics()
            self.display.show(
                f"processed {self.done}/{self.items}  dead letters {lost}  "
                f"parser restarts {parser.restarts}  parser queue {parser.mailbox.depth}"
            )
        if self.done + lost >= self.items:
            self.stop()  # its timer stops with it; run_pipeline is watching


def build_tree(api: PriorityPool) -> Supervisor:
    """The supervision tree: downstream stages first, so they exist when upstream starts."""
    return Supervisor(
        "pipeline",
        [
            ChildSpec(Sink, name="sink"),
            Supervisor(
                "enrichers",
                [
                    ChildSpec(UrgentEnricher, args=(api,), name="enrich-urgent"),
                    ChildSpec(BulkEnricher, args=(api,), name="enrich-bulk"),
                ],
            ),
            Router("scorer", Scorer, SCORERS, routing=Routing.LEAST_BUSY),
            ChildSpec(Parser, name="parser", backoff=Backoff(min=0.005, max=0.05, jitter=0.1)),
            Router("fetchers", Fetcher, FETCHERS, routing=Routing.LEAST_BUSY),
            ChildSpec(Source, name="source"),
        ],
        strategy=Strategy.ONE_FOR_ONE,
        max_restarts=200,
        within=10.0,
    )


class Progress:
    """Live progress at the bottom of a terminal, log lines scrolling above it.

    One writer owns the terminal (triactor's ``StatusLine``): a log line first erases the
    progress line, then draws it again below, so the two never run into each other. When
    stderr is not a terminal: a progress line per second on stdout, log lines as they come.
    """

    def __init__(self) -> None:
        self.line = StatusLine(sys.stderr, enabled=sys.stderr.isatty())
        self.last_line = 0.0

    def write(self, text: str) -> None:
        """The log sink: write a log line above the progress line."""
        self.line.write(text)

    def show(self, text: str, final: bool = False) -> None:
        """Show the progress ``text``; the ``final`` one stays, on stdout."""
        if self.line.enabled and not final:
            self.line.show(text)
        elif final or time.monotonic() - self.last_line >= 1.0:
            self.line.clear()
            self.last_line = time.monotonic()
            print(text, flush=True)


async def run_pipeline(
    items: int, seed: int, *, progress: bool | Progress = True
) -> dict[str, object]:
    """Run the pipeline over ``items`` documents; return the report's numbers."""
    api = PriorityPool(2, classes={"urgent": 0.0, "bulk": 0.3}, rate=60.0, burst=2)
    started = time.monotonic()
    display = progress if isinstance(progress, Progress) else Progress()
    async with open_actor_system() as system:
        await system.spawn(build_tree(api))
        source, sink, parser = (system.lookup(n) for n in ("source", "sink", "parser"))
        monitor = await system.spawn(Monitor, items, display if progress else None)
        await source.tell(Emit(items, seed))
        await system.watch(monitor)  # until every document is through
        done = sum((await sink.ask(Report())).values())
        lost = system.dead_letters.count
        result = await _report(system, api, source, sink, parser, items, time.monotonic() - started)
    if progress:
        display.show(f"processed {done}/{items}  dead letters {lost}", final=True)
    return result


async def _report(
    system: object,
    api: PriorityPool,
    source: ActorRef,
    sink: ActorRef,
    parser: ActorRef,
    items: int,
    elapsed: float,
) -> dict[str, object]:
    dead_letters = system.dead_letters  # type: ignore[attr-defined]
    pool = api.statistics()
    scorers = system.lookup("scorer")  # type: ignore[attr-defined]
    assert isinstance(scorers, RouterRef)
    return {
        "items": items,
        "processed": await sink.ask(Report()),
        "dead_letters": dead_letters.count,
        "corrupt_dropped": dead_letters.count_by_reason().get(DeadLetterReason.CRASHED, 0),
        "parser_restarts": parser.statistics().restarts,
        "scored": [stats.processed for stats in scorers.routee_statistics()],
        "source": await source.ask(Report()),
        "pool": {
            name: {"grants": c.grants, "wait_p50": c.wait_p50, "wait_p99": c.wait_p99}
            for name, c in pool.classes.items()
        },
        "elapsed": elapsed,
    }


def print_report(report: dict[str, object]) -> None:
    """Print the end-of-run report."""
    processed = report["processed"]
    source = report["source"]
    pool = report["pool"]
    assert isinstance(processed, dict) and isinstance(source, dict) and isinstance(pool, dict)
    print()
    print(f"Pipeline report ({report['elapsed']:.2f} s)")
    print(f"  documents emitted     {source['emitted']}")
    print(f"  processed             {sum(processed.values())}  ({dict(processed)})")
    dead, restarts, blocked = (
        report["dead_letters"],
        report["parser_restarts"],
        source["blocked_seconds"],
    )
    print(f"  dead letters          {dead}  (corrupt documents that crashed the parser)")
    print(f"  parser restarts       {restarts}  (queued documents kept every time)")
    print(f"  source blocked        {blocked:.2f} s  (backpressure from full mailboxes)")
    scored = report["scored"]
    assert isinstance(scored, list)
    print(
        f"  scored                {sum(scored)}  on {len(scored)} cores, in worker processes "
        f"(per scorer: {', '.join(map(str, scored))})"
    )
    print("  API pool waits by priority:")
    for name, stats in pool.items():
        print(
            f"    {name:<7} grants {stats['grants']:>4}  p50 {stats['wait_p50'] * 1000:6.1f} ms"
            f"  p99 {stats['wait_p99'] * 1000:6.1f} ms"
        )


def _short_log_line(record: Record) -> str:
    # A callable format: loguru then appends no traceback.
    return "{time:HH:mm:ss.SSS} {level: <7} {message}\n"


def _log_line_with_traceback(record: Record) -> str:
    return "{time:HH:mm:ss.SSS} {level: <7} {message}\n{exception}"


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, run the pipeline, print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=400, help="documents to process")
    parser.add_argument("--seed", type=int, default=1, help="random seed for the documents")
    parser.add_argument("--quiet", action="store_true", help="no progress lines, only the report")
    parser.add_argument(
        "--verbose", action="store_true", help="full logs, with every crash's traceback"
    )
    args = parser.parse_args(argv)
    display = Progress()
    # This program owns its output (the library adds no sinks): triactor's records go to
    # loguru, whose one sink writes above the progress line. One line per warning or crash;
    # --verbose adds INFO lines and every traceback, in full.
    triactor.configure_logging(to="loguru", full_tracebacks=args.verbose)
    logger.remove()
    logger.add(
        display.write,
        level="INFO" if args.verbose else "WARNING",
        format=_log_line_with_traceback if args.verbose else _short_log_line,
        backtrace=False,
        diagnose=False,  # never show variable values (documents, secrets) in tracebacks
    )
    run = functools.partial(run_pipeline, progress=False if args.quiet else display)
    report = trio.run(run, args.items, args.seed)
    print_report(report)


if __name__ == "__main__":
    main()
