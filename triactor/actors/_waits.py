"""Who waits on whom right now: the wait-for graph in which deadlocks among actors are named.

An actor has handler *slots*: one (one message at a time), or ``max_concurrency``; ``on_start``
holds them all, since no message is taken before it returns. Whatever holds a slot (a serial
actor's handler or ``on_start``: the cell itself; a concurrent actor's handler: its task's
:class:`HandlerActivity`) may wait on another actor, and the runtime notes on it what:

- an ``ask``: ``waiting_on`` is the asked actor, ``waiting_for`` the pending request; it needs
  a slot of that actor;
- a start (``spawn`` or a supervisor starting a child): ``waiting_on`` is the starting actor,
  ``waiting_for`` is None; it needs that actor's ``on_start`` to return.

An actor is *stuck* when every one of its slots is held by something that waits on a stuck
actor. A new ask that would leave the asked actor stuck can never be answered: a deadlock,
refused at once with :class:`~triactor.AskCycleError` instead of hanging until a timeout. The
search assumes an actor it meets again on the current path is stuck (a cycle of waits that
nothing outside it can break), and gives up as soon as a slot is free or a holder waits on
something untracked (a timer, a lock, a full mailbox): it never refuses an ask that could end.

Cost: nothing on ``tell``; on ``ask`` from inside an actor, two attribute writes and a look at
the asked actor (the search runs only if that one is itself waiting).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Protocol, final

if TYPE_CHECKING:
    import trio

    from ._cell import ActorCell
    from ._request import Request

__all__ = [
    "HandlerActivity",
    "Waiter",
    "current_waiter",
    "find_deadlock",
    "starting",
    "task_activity",
]


class Waiter(Protocol):
    """Something that holds a handler slot and may wait on another actor."""

    waiting_on: ActorCell | None
    waiting_for: Request | None


@final
class HandlerActivity:
    """One handler task of a ``max_concurrency > 1`` actor, as a node of the wait-for graph."""

    __slots__ = ("task", "waiting_for", "waiting_on")

    def __init__(self, task: trio.lowlevel.Task) -> None:
        self.task = task
        self.waiting_on: ActorCell | None = None
        self.waiting_for: Request | None = None


#: In a handler task of a ``max_concurrency > 1`` actor: that task's node.
task_activity: ContextVar[HandlerActivity | None] = ContextVar(
    "triactor_task_activity", default=None
)


def current_waiter(cell: ActorCell) -> Waiter | None:
    """The slot holder the current task waits for, in actor ``cell`` (None if unknown).

    A task that a handler started in a nursery of its own counts as that handler: the handler
    cannot return before its nursery's tasks have (a wait noted by one of several such tasks
    may hide another's, which only makes the search miss a deadlock, never invent one).
    """
    if cell.max_concurrency == 1 or not cell.started:
        return cell
    return task_activity.get()


def find_deadlock(
    asker: Waiter, asker_cell: ActorCell, target: ActorCell
) -> tuple[str, ...] | None:
    """Whether ``asker`` (a slot holder of ``asker_cell``) waiting on ``target`` deadlocks.

    Returns the actor paths around the cycle (first and last the same), or None.
    """
    path: list[ActorCell] = []
    cycle = _stuck(target, asker, asker_cell, path)
    return None if cycle is None else tuple(cell.path for cell in cycle)


def _stuck(
    cell: ActorCell, asker: Waiter, asker_cell: ActorCell, path: list[ActorCell]
) -> list[ActorCell] | None:
    """Whether no slot of ``cell`` can free up while ``asker`` waits; the cycle if so."""
    if cell in path:
        return [*path[path.index(cell) :], cell]  # met again: a closed cycle of waits
    path.append(cell)
    try:
        activities = cell.activities
        if cell.started and activities is not None:
            if len(activities) < cell.max_concurrency:
                return None  # a free slot
            found: list[ActorCell] | None = None
            for activity in list(activities):
                cycle = _holder_stuck(activity, asker, asker_cell, path)
                if cycle is None:
                    return None
                found = found or cycle
            return found
        return _holder_stuck(cell, asker, asker_cell, path)
    finally:
        path.pop()


def _holder_stuck(
    holder: Waiter, asker: Waiter, asker_cell: ActorCell, path: list[ActorCell]
) -> list[ActorCell] | None:
    """Whether a slot holder waits (transitively) on something that cannot move."""
    if holder is asker:
        return [asker_cell, *path]  # the asker holds it, and is about to wait
    waiting_on = holder.waiting_on
    if waiting_on is None:
        return None  # busy with something else (or idle): it may finish
    request = holder.waiting_for
    if request is not None:
        return None if request.done else _stuck(waiting_on, asker, asker_cell, path)
    # Waiting for ``waiting_on`` to start: on its on_start, which holds the cell itself.
    if waiting_on.started or waiting_on in path:
        return None
    path.append(waiting_on)
    try:
        return _holder_stuck(waiting_on, asker, asker_cell, path)
    finally:
        path.pop()


@contextmanager
def starting(child: ActorCell) -> Iterator[None]:
    """Around a wait for ``child``'s ``on_start`` (spawn, a supervisor starting a child).

    Inside an actor, the slot holder that waits is noted (an ask from the child's ``on_start``
    back to it is then a named deadlock), and the child's ``on_start`` carries the ask chain of
    the request being handled, with this actor added.
    """
    from ._cell import current_cell, task_ask_chain  # _cell imports this module

    parent = current_cell.get()
    waiter = None if parent is None else current_waiter(parent)
    if parent is None or waiter is None:
        yield
        return
    serial = parent.max_concurrency == 1 or not parent.started
    child.ask_chain = (*(parent.ask_chain if serial else task_ask_chain.get()), parent.path)
    waiter.waiting_on, waiter.waiting_for = child, None
    try:
        yield
    finally:
        if waiter.waiting_on is child:
            waiter.waiting_on = None
