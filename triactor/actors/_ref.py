"""``ActorRef``: the handle through which everything talks to an actor."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any

import trio
from trio.lowlevel import checkpoint, checkpoint_if_cancelled

from .._errors import AskCycleError, MailboxFull
from ..mailbox import Overflow
from ._cell import ActorState, ExitReason, current_cell, task_ask_chain
from ._dead_letters import DeadLetterReason
from ._request import Request
from ._statistics import ActorStatistics, actor_statistics

if TYPE_CHECKING:
    from ._cell import ActorCell

__all__ = ["ActorRef", "LocalActorRef"]


class ActorRef(abc.ABC):
    """A location-transparent handle to an actor: send it messages, ask it questions, stop it.

    Code holding a ref never knows whether the actor runs in this process. A ref stays valid
    across restarts of its actor (same name, same mailbox), so it can be kept and shared freely.
    Refs are made by the system, never by users: they come from ``system.spawn``,
    ``system.lookup`` and ``Actor.ref``.

    Example::

        counter = await system.spawn(Counter, name="counter")
        await counter.tell(Add(2))          # enqueue, waits only if the mailbox is full
        total = await counter.ask(Total(), timeout=1.0)
        await counter.stop()

    Messages are attrs classes (or any type cattrs can structure) so that a remote transport can
    carry them: no handles, locks or lambdas inside messages.
    """

    __slots__ = ()

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """The actor's name, unique in its system."""

    @property
    @abc.abstractmethod
    def path(self) -> str:
        """The actor's path, e.g. ``/root/workers/w1``."""

    @property
    @abc.abstractmethod
    def is_alive(self) -> bool:
        """False once the actor has stopped for good (it may be restarting when True)."""

    @abc.abstractmethod
    def statistics(self) -> ActorStatistics:
        """Return the actor's :class:`~triactor.ActorStatistics` snapshot (counts, mailbox)."""

    @abc.abstractmethod
    async def tell(self, message: object, *, priority: int = 0) -> None:
        """Send ``message`` without waiting for it to be handled.

        When the mailbox is full the actor's ``Overflow`` policy applies: ``BLOCK`` waits for
        room (backpressure), ``DROP_NEWEST``/``DROP_OLDEST`` drop one message into dead letters,
        ``FAIL`` raises. A message for an actor that has stopped goes to dead letters (logged).
        ``priority``: larger is handled sooner; equal priorities keep FIFO order.

        This is a cancellation point; it is a schedule point only when it waits for room.

        Raises:
            MailboxFull: if the mailbox is full and its policy is ``Overflow.FAIL``.
        """

    @abc.abstractmethod
    def try_tell(self, message: object, *, priority: int = 0) -> bool:
        """Send ``message`` if that needs no waiting. Returns whether it was queued.

        A full ``BLOCK`` or ``FAIL`` mailbox returns False and the caller keeps the message; a
        full ``DROP_NEWEST`` mailbox drops it into dead letters and returns False;
        ``DROP_OLDEST`` makes room and returns True. A stopped actor dead-letters it and
        returns False. Never raises for a full mailbox.
        """

    @abc.abstractmethod
    async def ask(self, message: object, *, timeout: float | None = None, priority: int = 0) -> Any:
        """Send ``message`` and wait for the handler's return value.

        Honors the caller's cancel scopes; ``timeout`` adds one of its own. A request whose
        caller has stopped waiting (timeout or cancellation) before the actor got to it is not
        handled at all: it goes to dead letters as expired. A reply that comes after the caller
        stopped waiting, while the handler was running, goes to dead letters, labelled late.

        Raises:
            trio.TooSlowError: if ``timeout`` passes first; the message names the target, the
                message type and the time waited.
            ActorStopped: at once if the actor has stopped, or if it stops before answering.
            NoHandler: if the actor has no handler for the message's type.
            MailboxFull: if the mailbox is full and its policy refuses the request.
            Exception: whatever the handler raised, re-raised here with a note naming the
                actor path and the message type. The actor then crashes and its supervisor
                applies its rule, unless the exception is one of the actor's ``resume_on``
                types: then it goes on, its state kept.
        """

    @abc.abstractmethod
    async def stop(self) -> None:
        """Ask the actor to stop after its current message and wait until it has.

        The request goes through the control lane, ahead of queued messages, so it works on a
        full mailbox. The stop is bounded by the actor's ``shutdown_timeout``: an actor still
        busy then (a handler that does not return) is cancelled, and watchers see it as
        ``"cancelled"``; ``on_stop`` runs either way, bounded by the same timeout. Under a
        supervisor this is a normal exit for the child's restart type: a transient or temporary
        child is then stopped for good, a permanent one is restarted.
        If a crash ends the actor before it takes the request, the request is made again to
        the incarnation its supervisor starts. Stopping a stopped actor returns at once.
        """


class LocalActorRef(ActorRef):
    """The ref of an actor in this process: its methods work directly on the actor's cell.

    Subclassed only inside triactor: a router's ref routes its messages to the routees.
    """

    __slots__ = ("_cell",)

    def __init__(self, cell: ActorCell) -> None:
        self._cell = cell

    @property
    def name(self) -> str:
        return self._cell.name

    @property
    def path(self) -> str:
        return self._cell.path

    @property
    def is_alive(self) -> bool:
        return self._cell.state is not ActorState.STOPPED

    def statistics(self) -> ActorStatistics:
        return actor_statistics(self._cell)

    def __repr__(self) -> str:
        cell = self._cell
        mailbox = cell.mailbox
        return (
            f"<ActorRef {cell.path} {cell.activity.value}, "
            f"{len(mailbox)}/{mailbox.capacity} queued>"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LocalActorRef) and other._cell is self._cell

    def __hash__(self) -> int:
        return hash(self._cell)

    async def tell(self, message: object, *, priority: int = 0) -> None:
        # The hot path: Mailbox.put inlined to save a coroutine per message.
        cell = self._cell
        if cell.check_messages:
            cell.system.check_message(message)
        await checkpoint_if_cancelled()
        mailbox = cell.mailbox
        if mailbox.put_nowait(message, priority):
            return
        if (
            mailbox.overflow is Overflow.BLOCK
            and not mailbox.closed
            and await mailbox.wait_to_put(message, priority)
        ):
            return
        if mailbox.closed:
            cell.dead_letter(message, DeadLetterReason.ACTOR_STOPPED)

    def try_tell(self, message: object, *, priority: int = 0) -> bool:
        cell = self._cell
        if cell.check_messages:
            cell.system.check_message(message)
        mailbox = cell.mailbox
        try:
            if mailbox.put_nowait(message, priority):
                return True
        except MailboxFull:  # Overflow.FAIL: try_tell reports instead of raising
            return False
        if mailbox.closed:
            cell.dead_letter(message, DeadLetterReason.ACTOR_STOPPED)
        return False

    async def ask(self, message: object, *, timeout: float | None = None, priority: int = 0) -> Any:
        if timeout is None:
            return await self._ask(message, priority)
        with trio.move_on_after(timeout):
            return await self._ask(message, priority)
        cell = self._cell
        raise trio.TooSlowError(
            f"ask {type(message).__qualname__} to actor {cell.path!r} got no reply within "
            f"{timeout} s ({len(cell.mailbox)} messages queued there); a late reply goes to dead "
            "letters. Raise timeout=, or find out what keeps the actor busy "
            "(ref.statistics(), system.snapshot())"
        )

    async def _ask(self, message: object, priority: int) -> Any:
        # The hot path: Mailbox.put inlined, as in tell.
        cell = self._cell
        if cell.check_messages:
            cell.system.check_message(message)
        mailbox = cell.mailbox
        if mailbox.closed:
            await checkpoint()
            raise cell.stopped_error(message)
        await checkpoint_if_cancelled()
        # The chain of actors waiting on each other through asks; an ask that would close a
        # cycle is a deadlock among one-message-at-a-time actors, so it is refused at once.
        # Only a one-message-at-a-time target can deadlock: a concurrent one has other slots.
        asker = current_cell.get()
        if asker is None:
            chain: tuple[str, ...] = ()
        else:
            waiting = asker.ask_chain if asker.max_concurrency == 1 else task_ask_chain.get()
            chain = (*waiting, asker.path)
            if cell.max_concurrency == 1 and cell.path in chain:
                cycle = (*chain[chain.index(cell.path) :], cell.path)
                raise AskCycleError(cycle, type(message).__qualname__)
        request = Request(message, cell, chain)
        if not mailbox.put_nowait(request, priority):
            # Full: BLOCK waits for room; DROP_NEWEST has failed the request already.
            queued = False
            if mailbox.overflow is Overflow.BLOCK:
                queued = await mailbox.wait_to_put(request, priority)
            if not queued and not request.done:  # refused: the actor is stopping for good
                cell.dead_letter(message, DeadLetterReason.ACTOR_STOPPED)
                raise cell.stopped_error(message)
        return await request.wait()

    async def stop(self) -> None:
        cell = self._cell
        await checkpoint_if_cancelled()
        deadline = cell.stop_deadline()
        while cell.state is not ActorState.STOPPED:
            await cell.request_stop(deadline=deadline).wait()
            if cell.last_exit is not ExitReason.CRASHED:
                return
            # A crash beat the stop request to it; its supervisor may restart it, so ask again.
        await checkpoint()
