"""Which waiter is served next: strict priority plus a credit scheme for minimum shares.

The rule, applied at every grant (the proof of the bound it gives is in ``_shares.py``):

1. Every class with waiters earns its share as credit on each grant (whoever gets it).
2. A class whose credit, with this grant's share added, reaches one whole grant is *eligible*:
   it is owed a grant. The highest-priority eligible class is served.
3. If no class is eligible, the highest-priority class with waiters is served.
4. The served class pays one grant of credit, never going below zero. A class whose last waiter
   leaves has its credit reset to zero, so idle classes cannot bank credit.

The scheduler only picks and accounts; it never touches time, tasks or slots. Credit changes
only on grants, so a waiter that leaves without a grant changes no accounting.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import final

from ._queue import ClassQueue, Waiter
from ._shares import UNIT, starvation_bound

__all__ = ["ClassState", "Scheduler"]


@final
class ClassState:
    """The scheduling state of one priority class."""

    __slots__ = (
        "bound",
        "credit",
        "grants",
        "index",
        "longest_run",
        "name",
        "queue",
        "run",
        "units",
    )

    def __init__(self, name: str, index: int, units: int, bound: int | None) -> None:
        self.name = name
        #: Position in priority order, 0 is the highest.
        self.index = index
        #: Guaranteed minimum share, in millionths of all grants.
        self.units = units
        #: The documented starvation bound for this class (None: no guarantee).
        self.bound = bound
        #: Grants owed to this class, in millionths.
        self.credit = 0
        self.queue = ClassQueue()
        #: Grants in a row that went to other classes while this one waited.
        self.run = 0
        self.longest_run = 0
        self.grants = 0


@final
class Scheduler:
    """The waiting queues of all classes and the choice between them."""

    __slots__ = ("classes", "grants", "waiting")

    def __init__(self, specs: Sequence[tuple[str, int]]) -> None:
        units = [u for _, u in specs]
        self.classes = tuple(
            ClassState(name, i, u, starvation_bound(units, i)) for i, (name, u) in enumerate(specs)
        )
        self.grants = 0
        self.waiting = 0

    def enqueue(self, waiter: Waiter) -> None:
        """Add a waiter to its class's queue."""
        self.classes[waiter.index].queue.append(waiter)
        self.waiting += 1

    def remove(self, waiter: Waiter) -> None:
        """Take out a waiter leaving without a grant."""
        state = self.classes[waiter.index]
        state.queue.remove(waiter)
        self.waiting -= 1
        if not state.queue:
            state.credit = 0
            state.run = 0

    def target(self) -> Waiter | None:
        """The waiter the next grant goes to, or None if nobody waits. Changes nothing."""
        fallback: ClassState | None = None
        for state in self.classes:
            if state.queue:
                if state.units and state.credit + state.units >= UNIT:
                    return state.queue.head()
                if fallback is None:
                    fallback = state
        return None if fallback is None else fallback.queue.head()

    def take(self, waiter: Waiter) -> None:
        """Account for granting ``waiter``, which must be :meth:`target`, and dequeue it."""
        chosen = self.classes[waiter.index]
        for state in self.classes:
            if state.queue:
                state.credit += state.units
                if state is not chosen:
                    state.run += 1
                    if state.run > state.longest_run:
                        state.longest_run = state.run
        chosen.credit = max(0, chosen.credit - UNIT)
        chosen.run = 0
        chosen.grants += 1
        self.grants += 1
        popped = chosen.queue.pop_head()
        assert popped is waiter, "only the target may be granted"
        self.waiting -= 1
        if not chosen.queue:
            chosen.credit = 0
