"""A node process for the multi-process cluster tests: ``python -m tests.remote_node ...``.

It hosts the exported actors below under a supervisor and records every job it handles in a
file (one id per line, written unbuffered so a SIGKILL loses nothing already handled).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

import attrs
import trio

import triactor
from triactor import Actor, ChildSpec, Supervisor, handler


@attrs.frozen
class Job:
    id: int
    delay: float = 0.0


@attrs.frozen
class KillNode:
    """Poison: the host dies (SIGKILL) every time it handles this."""


@attrs.frozen
class Echo:
    value: str


@attrs.frozen
class Fail:
    text: str


@attrs.frozen
class Slow:
    seconds: float


@attrs.frozen
class AskVia:
    """Ask the named remote actor ``Echo(...)``, or forward this AskVia to it."""

    target: str
    hops: int


class Worker(Actor):
    mailbox_capacity = 50

    def __init__(self, record: str) -> None:
        self.fd = os.open(record, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    @handler
    async def job(self, msg: Job) -> None:
        if msg.delay:
            await trio.sleep(msg.delay)
        os.write(self.fd, b"%d\n" % msg.id)

    @handler
    async def kill(self, msg: KillNode) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    @handler
    async def echo(self, msg: Echo) -> str:
        return f"{msg.value} from {self.system.node}"

    @handler
    async def fail(self, msg: Fail) -> str:
        raise ValueError(msg.text)

    @handler
    async def slow(self, msg: Slow) -> str:
        await trio.sleep(msg.seconds)
        return "slow done"

    @handler
    async def via(self, msg: AskVia) -> str:
        target = self.system.remote(msg.target)
        if msg.hops <= 0:
            reply: str = await target.ask(Echo("end"), timeout=10)
            return reply
        reply = await target.ask(AskVia(self.name, msg.hops - 1), timeout=10)
        return reply


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--cluster", required=True)
    parser.add_argument("--node", required=True)
    parser.add_argument("--name", default="worker")
    parser.add_argument("--record", required=True)
    parser.add_argument("--claim-after", type=float, default=1.0)
    parser.add_argument("--max-deliveries", type=int, default=5)
    args = parser.parse_args()
    cluster = triactor.Cluster(
        args.url,
        name=args.cluster,
        node=args.node,
        claim_after=args.claim_after,
        max_deliveries=args.max_deliveries,
    )
    tree = Supervisor(
        "root",
        [ChildSpec(Worker, args=(args.record,), name=args.name, export=True)],
        max_restarts=1000,
        within=1.0,
    )

    async def announce(system: triactor.ActorSystem, root: triactor.ActorRef) -> None:
        print("ready", flush=True)

    result = triactor.run(tree, cluster=cluster, monitor=announce, shutdown_timeout=10)
    sys.exit(0 if result.clean else 1)


if __name__ == "__main__":
    main()
