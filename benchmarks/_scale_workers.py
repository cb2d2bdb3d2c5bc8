"""The CPU stage as worker processes run it: ``triactor run benchmarks._scale_workers:tree``.

``python -m benchmarks scale`` starts it with ``--workers 2``: each worker hosts the exported
``stage``, does the pure-Python work inline (a worker process has nothing else to do), and
reports each message done to the benchmark process's exported ``scale-done``.
"""

from __future__ import annotations

import attrs

from triactor import Actor, ChildSpec, Supervisor, handler


def crunch(rounds: int) -> int:
    """Pure-Python CPU work: ``rounds`` steps of a little arithmetic (holds the GIL)."""
    acc = 0
    for i in range(rounds):
        acc = (acc * 31 + i) % 1_000_003
    return acc


@attrs.frozen
class Job:
    rounds: int


@attrs.frozen
class Done:
    pass


class Stage(Actor):
    """Works one job at a time; its process is one core's worth of the stage."""

    mailbox_capacity = 2  # a worker takes only what it can start soon: the others get the rest

    @handler
    async def job(self, msg: Job) -> None:
        crunch(msg.rounds)
        await self.system.remote("scale-done").tell(Done())


#: The tree every worker runs.
tree = Supervisor("root", [ChildSpec(Stage, name="stage", export=True)])
