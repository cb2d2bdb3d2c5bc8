"""``RouterRef``: the ref of a router, which hands each message to one of its routees."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, final

from trio.lowlevel import checkpoint, checkpoint_if_cancelled

from ..actors import ActorRef, ActorStatistics, DeadLetterReason
from ..actors._cell import ActorState
from ..actors._ref import LocalActorRef
from ..actors._statistics import actor_statistics
from ..actors._system_message import SystemMessage
from ..mailbox import MailboxStatistics
from ._routing import Routing

if TYPE_CHECKING:
    from ..actors._cell import ActorCell

__all__ = ["RouterRef"]


@final
class RouterRef(LocalActorRef):
    """The ref of a :class:`~triactor.Router`: each message goes to one of its routees.

    ``tell``, ``try_tell`` and ``ask`` choose a routee by the router's :class:`Routing` and
    hand the message straight to that routee's mailbox, in the sender's task: a router adds
    no hop and no task of its own. The routee's mailbox policy then applies as if the sender
    had addressed it: under ``Overflow.BLOCK`` a sender waits when the chosen routee is full
    (with ``LEAST_BUSY`` that means every routee is full), an ``ask`` gets its reply from the
    routee that handled it. ``stop()`` stops the router, and with it every routee in reverse
    order. Messages for a router that has stopped for good go to dead letters (``tell``) or
    raise :class:`~triactor.ActorStopped` (``ask``).

    Made by the runtime: ``system.spawn(router)`` and ``system.lookup(router_name)`` return
    it. The routees are fixed for the router's life (``size`` of them); each one that crashes
    is restarted by the router with its queue kept.

    Example::

        fetchers = await system.spawn(Router("fetchers", Fetcher, size=8))
        await fetchers.tell(Fetch(url))                     # to the least busy fetcher
        depths = [s.mailbox.depth for s in fetchers.routee_statistics()]
    """

    __slots__ = ("_least_busy", "_next", "_routees", "_twice", "routing")

    def __init__(self, cell: ActorCell, routees: Sequence[ActorCell], routing: Routing) -> None:
        super().__init__(cell)
        #: How this router chooses a routee.
        self.routing = routing
        self._least_busy = routing is Routing.LEAST_BUSY
        self._routees: tuple[ActorCell, ...] = ()
        self._twice: tuple[ActorCell, ...] = ()
        self._next = 0
        self._set_routees(routees)

    def _set_routees(self, routees: Sequence[ActorCell]) -> None:
        """Route to ``routees`` from now on (the router's runtime calls it at each start).

        Raises:
            ValueError: if ``routees`` is empty.
        """
        if not routees:
            raise ValueError(f"router {self._cell.path!r} needs at least one routee")
        self._routees = tuple(routees)
        self._twice = self._routees * 2  # a rotation is a slice: _twice[start : start + size]
        # Where the next choice starts: the next routee in turn (round robin), or the first
        # one looked at (least busy, so that ties go round in turn too).
        self._next = 0

    # -- choosing -------------------------------------------------------------------------------

    def _choose_routee(self) -> ActorCell | None:
        """Choose the routee for the next message, by the router's routing; None once the
        router has stopped for good.

        ``tell``, ``try_tell`` and ``ask`` use it; a transport that feeds actors' mailboxes
        directly feeds the chosen routee's. Internal: it returns the routee's cell.
        """
        if self._cell.state is ActorState.STOPPED:
            return None
        size = len(self._routees)
        start = self._next
        self._next = start + 1 if start + 1 < size else 0
        if not self._least_busy:
            chosen = self._routees[start]
            if chosen.mailbox.closed:
                return self._first_open(start)
            return chosen
        best = self._routees[start]
        best_load = -1
        # Queued messages and waiting senders count double so that, among routees of equal
        # capacity, one with room always beats a full one; being busy breaks ties.
        for cell in self._twice[start : start + size]:
            load = 2 * cell.mailbox.backlog + (cell.current is not None)
            if best_load < 0 or load < best_load:
                best, best_load = cell, load
                if load == 0:
                    break
        if best.mailbox.closed:  # stopped for good (terminate_child), so its queue is empty
            return self._least_busy_open(start)
        return best

    def _first_open(self, start: int) -> ActorCell:
        """Round robin past routees stopped for good, keeping the turn order."""
        size = len(self._routees)
        for offset in range(1, size):
            candidate = self._twice[start + offset]
            if not candidate.mailbox.closed:
                self._next = (start + offset + 1) % size
                return candidate
        return self._routees[start]  # every routee stopped: its tell dead-letters the message

    def _least_busy_open(self, start: int) -> ActorCell:
        """Least busy among the routees not stopped for good (the slow path)."""
        size = len(self._routees)
        open_ones = [c for c in self._twice[start : start + size] if not c.mailbox.closed]
        if not open_ones:
            return self._routees[start]  # every routee stopped: its tell dead-letters it
        return min(
            open_ones, key=lambda cell: 2 * cell.mailbox.backlog + (cell.current is not None)
        )

    # -- sending --------------------------------------------------------------------------------

    async def tell(self, message: object, *, priority: int = 0) -> None:
        if isinstance(message, SystemMessage):  # for the router itself, as a supervisor
            await super().tell(message, priority=priority)
            return
        routee = self._choose_routee()
        if routee is None:
            await checkpoint_if_cancelled()
            self._cell.dead_letter(message, DeadLetterReason.ACTOR_STOPPED)
            return
        await routee.ref.tell(message, priority=priority)

    def try_tell(self, message: object, *, priority: int = 0) -> bool:
        if isinstance(message, SystemMessage):
            return super().try_tell(message, priority=priority)
        routee = self._choose_routee()
        if routee is None:
            self._cell.dead_letter(message, DeadLetterReason.ACTOR_STOPPED)
            return False
        return routee.ref.try_tell(message, priority=priority)

    async def ask(self, message: object, *, timeout: float | None = None, priority: int = 0) -> Any:
        if isinstance(message, SystemMessage):
            return await super().ask(message, timeout=timeout, priority=priority)
        routee = self._choose_routee()
        if routee is None:
            await checkpoint()
            raise self._cell.stopped_error(message)
        return await routee.ref.ask(message, timeout=timeout, priority=priority)

    # -- introspection --------------------------------------------------------------------------

    def _routee_cells(self) -> tuple[ActorCell, ...]:
        """The routees' cells, in order. Internal (a transport feeding the routees uses it)."""
        return tuple(self._routees)

    @property
    def routees(self) -> tuple[ActorRef, ...]:
        """The routees' refs, in order (``<router>-0``, ``<router>-1``...)."""
        return tuple(cell.ref for cell in self._routees)

    def routee_statistics(self) -> tuple[ActorStatistics, ...]:
        """Return each routee's :class:`~triactor.ActorStatistics`, in routee order."""
        return tuple(actor_statistics(cell) for cell in self._routees)

    def statistics(self) -> ActorStatistics:
        """Return the router's :class:`~triactor.ActorStatistics`: its routees' work, summed.

        ``path`` and ``state`` are the router's; ``processed``, ``failures`` and ``restarts``
        are summed over the routees; the mailbox figures (depth, capacity, high-water marks,
        waiting senders, drops) are summed over the routees' mailboxes, and ``closed`` says
        whether the router has stopped for good. Per routee: :meth:`routee_statistics`.
        """
        parts = self.routee_statistics()
        boxes = [part.mailbox for part in parts]
        cell = self._cell
        return ActorStatistics(
            path=cell.path,
            state=cell.activity.value,
            processed=sum(part.processed for part in parts),
            failures=sum(part.failures for part in parts),
            restarts=sum(part.restarts for part in parts),
            current_message_type=None,
            mailbox=MailboxStatistics(
                depth=sum(box.depth for box in boxes),
                capacity=sum(box.capacity for box in boxes),
                high_water=sum(box.high_water for box in boxes),
                control_depth=cell.mailbox.statistics().control_depth,
                senders_waiting=sum(box.senders_waiting for box in boxes),
                dropped=sum(box.dropped for box in boxes),
                closed=cell.state is ActorState.STOPPED,
            ),
        )

    def __repr__(self) -> str:
        routees = self._routees
        queued = sum(len(cell.mailbox) for cell in routees)
        capacity = sum(cell.mailbox.capacity for cell in routees)
        return (
            f"<RouterRef {self._cell.path} {self._cell.activity.value}, {self.routing.value} "
            f"over {len(routees)} routees, {queued}/{capacity} queued>"
        )
