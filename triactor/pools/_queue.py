"""The waiters of one priority class: round robin between owners, FIFO within an owner."""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, final

from trio import CancelScope
from trio.lowlevel import Task

if TYPE_CHECKING:
    from ._lease import Lease

__all__ = ["ClassQueue", "Waiter"]


@final
class Waiter:
    """One pending request. The pool's dispatcher hands it a :class:`Lease` when it is chosen."""

    __slots__ = (
        "arrived",
        "index",
        "lease",
        "owner",
        "parked",
        "preempt_at",
        "preemptible",
        "removed",
        "seq",
        "task",
        "timer",
        "tokens_at",
        "weight",
    )

    def __init__(
        self,
        task: Task,
        index: int,
        weight: int,
        owner: object,
        preemptible: bool,
        seq: int,
        arrived: float,
    ) -> None:
        self.task = task
        #: The priority class, as its position (0 is the highest).
        self.index = index
        self.weight = weight
        #: Round robin key: waiters of one owner are served in order, owners take turns.
        self.owner = owner
        self.preemptible = preemptible
        #: Arrival order in the pool, compared with lease grant order for preemption.
        self.seq = seq
        self.arrived = arrived
        #: Set by the dispatcher on grant.
        self.lease: Lease | None = None
        #: True while the task sleeps in ``wait_task_rescheduled`` and may be rescheduled.
        self.parked = False
        #: True once taken out of the queue without a grant (cancelled, rejected).
        self.removed = False
        #: The cancel scope whose deadline wakes the task for its own timers, while it sleeps.
        self.timer: CancelScope | None = None
        #: When the rate gate will have tokens for it (set while it is blocked on tokens only).
        self.tokens_at = math.inf
        #: When it may next preempt a lower-class lease.
        self.preempt_at = math.inf

    def deadline(self) -> float:
        """The earliest of this waiter's own timers."""
        return min(self.tokens_at, self.preempt_at)


@final
class ClassQueue:
    """Waiters of one class. Owners take turns in a ring; each owner's waiters stay in order.

    The head is the first waiter of the owner at the front of the ring. Serving it moves that
    owner to the back of the ring, so an owner with many waiters (an actor's fan-out) gets one
    turn per round like every other owner. A new owner joins at the back.
    """

    __slots__ = ("_count", "_owners")

    def __init__(self) -> None:
        self._owners: OrderedDict[object, deque[Waiter]] = OrderedDict()
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    def __iter__(self) -> Iterator[Waiter]:
        for waiters in self._owners.values():
            yield from waiters

    @property
    def owners(self) -> int:
        """How many distinct owners have waiters."""
        return len(self._owners)

    def append(self, waiter: Waiter) -> None:
        """Queue a waiter behind its owner's earlier requests."""
        waiters = self._owners.get(waiter.owner)
        if waiters is None:
            self._owners[waiter.owner] = deque((waiter,))
        else:
            waiters.append(waiter)
        self._count += 1

    def head(self) -> Waiter:
        """The waiter served next; the queue must not be empty."""
        return next(iter(self._owners.values()))[0]

    def pop_head(self) -> Waiter:
        """Remove and return the waiter whose turn it is."""
        owner, waiters = next(iter(self._owners.items()))
        waiter = waiters.popleft()
        if waiters:
            self._owners.move_to_end(owner)
        else:
            del self._owners[owner]
        self._count -= 1
        return waiter

    def remove(self, waiter: Waiter) -> None:
        """Take out a waiter that leaves without a grant; the ring order of owners is kept."""
        waiters = self._owners[waiter.owner]
        waiters.remove(waiter)
        if not waiters:
            del self._owners[waiter.owner]
        self._count -= 1

    def oldest_arrival(self) -> float:
        """Arrival time of the longest-waiting waiter, or ``inf`` if empty."""
        return min((waiters[0].arrived for waiters in self._owners.values()), default=math.inf)
