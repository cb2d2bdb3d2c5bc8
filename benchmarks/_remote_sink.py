"""The receiving node of ``python -m benchmarks remote``: ``python -m benchmarks._remote_sink``.

It hosts the exported ``sink`` actor and prints ``ready`` once it runs.
"""

from __future__ import annotations

import sys

import attrs

import triactor
from triactor import Actor, ChildSpec, Supervisor, handler


@attrs.frozen
class Tick:
    n: int


@attrs.frozen
class Count:
    pass


@attrs.frozen
class Echo:
    n: int


class Sink(Actor):
    mailbox_capacity = 1000

    def __init__(self) -> None:
        self.count = 0

    @handler
    async def tick(self, msg: Tick) -> None:
        self.count += 1

    @handler
    async def total(self, msg: Count) -> int:
        return self.count

    @handler
    async def echo(self, msg: Echo) -> int:
        return msg.n


def main() -> None:
    url, cluster = sys.argv[1], sys.argv[2]

    async def announce(system: triactor.ActorSystem, root: triactor.ActorRef) -> None:
        print("ready", flush=True)

    tree = Supervisor("root", [ChildSpec(Sink, name="sink", export=True)])
    triactor.run(
        tree,
        cluster=triactor.Cluster(url, name=cluster, node="sink"),
        monitor=announce,
        blocking_threshold=None,
    )


if __name__ == "__main__":
    main()
