"""The smallest triactor program, for running the three ways the docs show.

    python -m examples.counter              # count to 10 from a synchronous program
    triactor tree examples.counter:tree     # draw the tree
    triactor run examples.counter:tree      # run it until Ctrl-C (or SIGTERM)

In a Trio program: ``await system.spawn(tree())``; in a synchronous one:
``with triactor.start_in_thread(tree()) as portal: portal.ask("counter", Total())``.
"""

from __future__ import annotations

import attrs

import triactor
from triactor import Actor, ChildSpec, Supervisor, handler


@attrs.frozen
class Add:
    """Adds ``amount`` to the counter."""

    amount: int


@attrs.frozen
class Total:
    """Asks the counter for its total."""


class Counter(Actor):
    """Keeps a running total; one message at a time, so no locks."""

    mailbox_capacity = 100

    def __init__(self, start: int = 0) -> None:
        self.total = start

    @handler
    async def add(self, msg: Add) -> None:
        self.total += msg.amount

    @handler
    async def get(self, msg: Total) -> int:
        return self.total


def tree() -> Supervisor:
    """The supervision tree: one counter under a one_for_one supervisor."""
    return Supervisor("app", [ChildSpec(Counter, name="counter")])


def main() -> None:
    """Count to 10 through a portal, then say how to run the tree as a service."""
    with triactor.start_in_thread(tree()) as portal:
        for n in range(1, 5):
            portal.tell("counter", Add(n))
        print("1 + 2 + 3 + 4 =", portal.ask("counter", Total(), timeout=1.0))
    print("Run the same tree as a service: triactor run examples.counter:tree (Ctrl-C stops it)")


if __name__ == "__main__":
    main()
