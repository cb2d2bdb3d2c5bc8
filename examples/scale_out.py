"""The pipeline's CPU stage, scaled out: the same scoring agents on one core, then on all.

    python -m examples.scale_out [--docs 200] [--cost-ms 20]

Documents come from a router of I/O-bound fetchers and go through a CPU-heavy scoring stage
(pure Python, about ``--cost-ms`` per document) to a sink. The stage runs twice:

1. as most Python code is written first: a plain ``def`` handler, which triactor runs in a
   worker thread. The loop stays free from *blocking*, but pure-Python work holds the GIL, so
   the stage uses one core and the loop wakes up late while it runs;
2. on the CPU path: a router of one scorer per core, each handler calling
   ``triactor.run_in_process`` (one line), so each document is scored in a worker process on
   its own core while the loop stays responsive.

For each run it prints the time, the throughput, how many documents each scorer handled (the
router's per-routee statistics), and the loop's wake-up lag, measured by a task that sleeps
2 ms at a time: what every other agent in the process would feel.
"""

from __future__ import annotations

import argparse
import math
import os
import time

import attrs
import trio

from triactor import (
    Actor,
    ActorRef,
    Router,
    RouterRef,
    Routing,
    handler,
    open_actor_system,
    run_in_process,
)

HEARTBEAT = 0.002
CORES = os.cpu_count() or 2


@attrs.frozen
class Document:
    id: int
    text: str = ""


def score_text(text: str, rounds: int) -> int:
    """The CPU-heavy step: ``rounds`` steps of pure-Python arithmetic over the text."""
    acc = len(text)
    for i in range(rounds):
        acc = (acc * 31 + i) % 1_000_003
    return acc


def rounds_for(milliseconds: float) -> int:
    """How many ``score_text`` rounds take about ``milliseconds`` on this machine."""
    probe = 100_000
    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        score_text("", probe)
        best = min(best, time.perf_counter() - start)
    return max(1, round(probe * milliseconds / 1000 / best))


class Sink(Actor):
    """Counts scored documents; sets ``done`` when the last one arrives."""

    def __init__(self, expected: int, done: trio.Event) -> None:
        self.expected = expected
        self.done = done
        self.count = 0

    @handler
    async def collect(self, doc: Document) -> None:
        self.count += 1
        if self.count == self.expected:
            self.done.set()


class Fetcher(Actor):
    """I/O-bound: a simulated 2 ms HTTP call per document, then on to the scorers."""

    mailbox_capacity = 8

    async def on_start(self) -> None:
        self.scorers = self.system.lookup("scorers")

    @handler
    async def fetch(self, doc: Document) -> None:
        await trio.sleep(0.002)
        await self.scorers.tell(attrs.evolve(doc, text=f"document {doc.id} " * 20))


class ThreadScorer(Actor):
    """The stage as a plain def handler: it runs in a worker thread, holding the GIL."""

    mailbox_capacity = 8

    def __init__(self, rounds: int) -> None:
        self.rounds = rounds

    async def on_start(self) -> None:
        self.sink = self.system.lookup("sink")

    @handler
    def score(self, doc: Document) -> None:
        score_text(doc.text, self.rounds)
        trio.from_thread.run(self.sink.tell, doc)


class ProcessScorer(Actor):
    """The stage on the CPU path: the work runs in a worker process, on another core."""

    mailbox_capacity = 8

    def __init__(self, rounds: int) -> None:
        self.rounds = rounds

    async def on_start(self) -> None:
        self.sink = self.system.lookup("sink")

    @handler
    async def score(self, doc: Document) -> None:
        await run_in_process(score_text, doc.text, self.rounds)  # the one line
        await self.sink.tell(doc)


@attrs.frozen
class StageReport:
    """What one run of the stage measured."""

    label: str
    seconds: float
    docs: int
    per_scorer: list[int]
    lag_p50_ms: float
    lag_p99_ms: float


async def _warm_up() -> None:
    # Worker processes start once per program (a few hundred ms each); start them first.
    async with trio.open_nursery() as nursery:
        for _ in range(CORES):
            nursery.start_soon(run_in_process, score_text, "", 1)


async def run_stage(label: str, scorers: Router, docs: int) -> StageReport:
    """Push ``docs`` documents through fetchers -> ``scorers`` -> sink; measure it."""
    lags: list[float] = []

    async def heartbeat() -> None:
        while True:
            before = time.perf_counter()
            await trio.sleep(HEARTBEAT)
            lags.append(time.perf_counter() - before - HEARTBEAT)

    done = trio.Event()
    async with open_actor_system() as system:
        await system.spawn(Sink, docs, done, name="sink")
        scorer_ref = await system.spawn(scorers)
        fetchers = await system.spawn(Router("fetchers", Fetcher, 4, routing=Routing.LEAST_BUSY))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(heartbeat)
            start = time.perf_counter()
            for n in range(docs):
                await fetchers.tell(Document(n))  # waits whenever every fetcher is full
            await done.wait()
            seconds = time.perf_counter() - start
            nursery.cancel_scope.cancel()
    per_scorer = _per_routee(scorer_ref)  # the system has stopped: every handler finished
    lags.sort()
    return StageReport(
        label,
        seconds,
        docs,
        per_scorer,
        lags[len(lags) // 2] * 1000,
        lags[min(len(lags) - 1, int(len(lags) * 0.99))] * 1000,
    )


def _per_routee(ref: ActorRef) -> list[int]:
    assert isinstance(ref, RouterRef)
    return [stats.processed for stats in ref.routee_statistics()]


async def compare(docs: int, cost_ms: float) -> list[StageReport]:
    """Run the stage on one core, then on the CPU path; return both reports."""
    rounds = rounds_for(cost_ms)
    one_core = Router("scorers", ThreadScorer, 1, args=(rounds,))
    every_core = Router("scorers", ProcessScorer, CORES, args=(rounds,))
    await _warm_up()
    return [
        await run_stage("1 core: plain def handler (a thread)", one_core, docs),
        await run_stage(f"CPU path: router of {CORES}, run_in_process", every_core, docs),
    ]


def print_reports(reports: list[StageReport], cost_ms: float) -> None:
    """Print the comparison."""
    print(f"Scoring stage: {reports[0].docs} documents of ~{cost_ms:g} ms CPU each")
    for report in reports:
        print(
            f"  {report.label:<42} {report.seconds:6.2f} s  "
            f"{report.docs / report.seconds:6.1f} docs/s  "
            f"loop lag p50 {report.lag_p50_ms:5.1f} ms, p99 {report.lag_p99_ms:5.1f} ms  "
            f"per scorer {report.per_scorer}"
        )
    print(f"  speedup: {reports[0].seconds / reports[-1].seconds:.2f}x on {CORES} cores")


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, run both versions of the stage, print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=200, help="documents to score")
    parser.add_argument("--cost-ms", type=float, default=20.0, help="CPU time per document")
    args = parser.parse_args(argv)
    print_reports(trio.run(compare, args.docs, args.cost_ms), args.cost_ms)


if __name__ == "__main__":  # required: each worker process imports this module
    main()
