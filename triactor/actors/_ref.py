"""``ActorRef``: the handle through which everything talks to an actor."""

from __future__ import annotations

import abc
import functools
from threading import get_ident
from typing import TYPE_CHECKING, Any, Final, Generic

import trio
from trio.lowlevel import (
    checkpoint,
    checkpoint_if_cancelled,
    enable_ki_protection,
    wait_task_rescheduled,
)
from typing_extensions import TypeVar

from .._errors import AskCycleError, MailboxFull
from .._hot import RUN_CONTEXT
from ..mailbox import Overflow
from ._cell import ActorState, ExitReason, current_cell, task_ask_chain
from ._dead_letters import DeadLetterReason
from ._request import Request
from ._statistics import ActorStatistics, actor_statistics
from ._waits import Waiter, find_deadlock, task_activity

if TYPE_CHECKING:
    from ._cell import ActorCell

__all__ = ["ActorRef", "LocalActorRef"]

_NO_RUN: Final = object()
_ZERO: Final = 0

#: The messages a ref accepts (``Any`` unless the actor class says: ``Actor[Fetch, Found]``).
M = TypeVar("M", contravariant=True, default=Any)
#: What ``ask`` returns: the handlers' return type (``Any`` unless the actor class says).
R = TypeVar("R", covariant=True, default=Any)


class ActorRef(abc.ABC, Generic[M, R]):
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

    For type checkers the ref is generic: ``ActorRef[M, R]`` accepts messages of type ``M`` and
    its ``ask`` returns ``R``. ``spawn`` fills both in from an actor declared as
    ``class Fetcher(Actor[Fetch, Found])``; a bare ``ActorRef`` is ``ActorRef[Any, Any]``.

    A ref is bound to its actor system's Trio thread. ``try_tell`` is safe from any thread (from
    another thread it goes through the system's loop and waits for it); ``tell``, ``ask`` and
    ``stop`` raise :class:`RuntimeError` there before anything is sent.
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
    async def tell(self, message: M, *, priority: int = 0) -> None:
        """Send ``message`` without waiting for it to be handled.

        When the mailbox is full the actor's ``Overflow`` policy applies: ``BLOCK`` waits for
        room (backpressure), ``DROP_NEWEST``/``DROP_OLDEST`` drop one message into dead letters,
        ``FAIL`` raises. A message for an actor that has stopped goes to dead letters (logged).
        ``priority``: larger is handled sooner; equal priorities keep FIFO order.

        This is a cancellation point; it is a schedule point only when it waits for room.

        Raises:
            MailboxFull: if the mailbox is full and its policy is ``Overflow.FAIL``.
            RuntimeError: if called from another thread than the actor system's (nothing is
                sent); use ``try_tell`` there, or ``trio.from_thread.run(ref.tell, msg)``.
            TypeError: if ``priority`` is not an int; the message is not sent.
        """

    @abc.abstractmethod
    def try_tell(self, message: M, *, priority: int = 0) -> bool:
        """Send ``message`` if that needs no waiting. Returns whether it was queued.

        A full ``BLOCK`` or ``FAIL`` mailbox returns False and the caller keeps the message; a
        full ``DROP_NEWEST`` mailbox drops it into dead letters and returns False;
        ``DROP_OLDEST`` makes room and returns True. A stopped actor dead-letters it and
        returns False. Never raises for a full mailbox.

        Thread-safe: from a plain ``def`` handler or any thread that runs no Trio loop, it hands
        the message to the actor system's loop and waits for it (a loop round trip), with the
        same result.

        Raises:
            RuntimeError: if called from a thread that runs another Trio loop (nothing is
                sent); there, ``await trio.to_thread.run_sync(ref.try_tell, msg)``.
            TypeError: if ``priority`` is not an int; the message is not sent.
        """

    @abc.abstractmethod
    async def ask(self, message: M, *, timeout: float | None = None, priority: int = 0) -> R:
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
            TypeError: if ``priority`` is not an int; the message is not sent.
            AskCycleError: if the ask would deadlock (see :class:`~triactor.AskCycleError`).
            Exception: whatever the handler raised, re-raised here with a note naming the
                actor path and the message type. The actor then crashes and its supervisor
                applies its rule, unless the exception is one of the actor's ``resume_on``
                types: then it goes on, its state kept.
            RuntimeError: if called from another thread than the actor system's (nothing is
                sent); there, ``trio.from_thread.run(ref.ask, msg)`` or a portal.
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


class LocalActorRef(ActorRef[M, R]):
    """The ref of an actor in this process: its methods work directly on the actor's cell.

    Subclassed only inside triactor: a router's ref routes its messages to the routees.
    """

    __slots__ = ("_cell", "_lane", "_mailbox", "_runner", "_thread")

    def __init__(self, cell: ActorCell) -> None:
        self._cell = cell
        self._mailbox = cell.mailbox
        self._lane = cell.mailbox.default_lane
        # The ident of the Trio thread that runs the system: the mailbox may only be touched
        # from it (a wake-up from another thread would be lost, and the actor never woken).
        self._thread = cell.system.thread_ident
        # The Trio run of the system: tell and ask take their fast path when called in it,
        # which implies the thread. A placeholder (never matched) without
        # triactor._hot.FAST_CANCEL, or when the system checks messages (the slow path does).
        self._runner: Any = (
            _NO_RUN if cell.system.check_messages else getattr(RUN_CONTEXT, "runner", _NO_RUN)
        )

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

    async def tell(self, message: M, *, priority: int = 0) -> None:
        # The hot path: Mailbox.put inlined to save a coroutine per message, the test of
        # checkpoint_if_cancelled inlined to save another (see triactor._hot), and while the
        # mailbox allows it (Mailbox.fast_limit) put_nowait inlined to a single append.
        try:
            task = RUN_CONTEXT.task  # see triactor._hot
            runner = task._runner
        except AttributeError:  # no Trio run in this thread, or no FAST_CANCEL
            runner = None
        if runner is self._runner:
            # In the system's run (so in its thread), no message checks: the test of
            # checkpoint_if_cancelled, which is all it would do.
            if task._cancel_status.effectively_cancelled or (
                runner.ki_pending and task is runner.main_task
            ):
                await checkpoint_if_cancelled()  # raises Cancelled (or KeyboardInterrupt)
            task._cancel_points += 1
        else:
            if get_ident() != self._thread:
                raise self._wrong_thread("tell", message)
            cell = self._cell
            if cell.check_messages:
                cell.system.check_message(message)
            await checkpoint_if_cancelled()
        mailbox = self._mailbox
        lane = self._lane
        # ``priority is _ZERO``: the int 0 itself (CPython keeps one), not False or an IntEnum.
        if priority is _ZERO and len(lane) < mailbox.fast_limit:
            lane.append(message)
            return
        if mailbox.put_nowait(message, priority):
            return
        if (
            mailbox.overflow is Overflow.BLOCK
            and not mailbox.closed
            and await mailbox.wait_to_put(message, priority)
        ):
            return
        if mailbox.closed:
            self._cell.dead_letter(message, DeadLetterReason.ACTOR_STOPPED)

    def try_tell(self, message: M, *, priority: int = 0) -> bool:
        cell = self._cell
        if get_ident() != self._thread:
            return self._try_tell_from_thread(message, priority)
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

    # KI-protected: a Ctrl-C anywhere in it is delivered where it parks (the request is then
    # abandoned), never between queueing the request and parking on it.
    @enable_ki_protection
    async def ask(self, message: M, *, timeout: float | None = None, priority: int = 0) -> R:
        if timeout is not None:
            if get_ident() != self._thread:  # before the timeout's cancel scope needs Trio
                raise self._wrong_thread("ask", message)
            return await self._ask_within(message, timeout, priority)
        # The hot path: the thread and cancellation tests of tell, Mailbox.put and
        # Request.wait inlined (a coroutine each saved per ask).
        cell = self._cell
        try:
            task = RUN_CONTEXT.task  # see triactor._hot
            runner = task._runner
        except AttributeError:  # no Trio run in this thread, or no FAST_CANCEL
            runner = None
        if runner is not self._runner:
            if get_ident() != self._thread:
                raise self._wrong_thread("ask", message)
            task = None
            if cell.check_messages:
                cell.system.check_message(message)
        mailbox = self._mailbox
        if priority.__class__ is not int:
            priority = mailbox.check_priority(priority, message)
        if mailbox.closed:
            await checkpoint()
            raise cell.stopped_error(message)
        if task is None:
            await checkpoint_if_cancelled()
        else:  # checkpoint_if_cancelled, as in tell
            if task._cancel_status.effectively_cancelled or (
                runner.ki_pending and task is runner.main_task
            ):
                await checkpoint_if_cancelled()  # raises Cancelled (or KeyboardInterrupt)
            task._cancel_points += 1
        # The chain of actors waiting on each other through nested asks travels with each
        # request (across processes too); an ask that would close a cycle through a
        # one-message-at-a-time actor is a deadlock, refused at once.
        asker = current_cell.get()
        reply: R
        if asker is not None:
            reply = await self._ask_from(asker, message, priority)
            return reply
        request = Request(message, cell)
        if not priority and len(self._lane) < mailbox.fast_limit:
            self._lane.append(request)
        elif not mailbox.put_nowait(request, priority):
            await self._wait_to_queue(request, priority)
            task = None  # the reply may have come already: Request.wait sees to it
        if task is None:
            reply = await request.wait()
            return reply
        # Request.wait inlined: the actor cannot have replied yet (it has not run since).
        request._asker = task
        reply = await wait_task_rescheduled(request._abort)
        return reply

    async def _ask_within(self, message: M, timeout: float, priority: int) -> R:
        with trio.move_on_after(timeout):
            reply: R = await self.ask(message, priority=priority)
            return reply
        cell = self._cell
        raise trio.TooSlowError(
            f"ask {type(message).__qualname__} to actor {cell.path!r} got no reply within "
            f"{timeout} s ({len(cell.mailbox)} messages queued there); a late reply goes to dead "
            "letters. Raise timeout=, or find out what keeps the actor busy "
            "(ref.statistics(), system.snapshot())"
        )

    async def _wait_to_queue(self, request: Request, priority: int) -> None:
        """A full mailbox: BLOCK waits for room; DROP_NEWEST has failed the request already.

        Raises:
            ActorStopped: if the request was refused because the actor is stopping for good.
        """
        cell = self._cell
        queued = False
        if cell.mailbox.overflow is Overflow.BLOCK:
            queued = await cell.mailbox.wait_to_put(request, priority)
        if not queued and not request.done:  # refused: the actor is stopping for good
            cell.dead_letter(request.message, DeadLetterReason.ACTOR_STOPPED)
            raise cell.stopped_error(request.message)

    async def _ask_from(self, asker: ActorCell, message: object, priority: int) -> Any:
        """An ask made by an actor: its chain, deadlock detection, and what it waits on."""
        cell = self._cell
        serial = asker.max_concurrency == 1 or not asker.started
        chain = (*(asker.ask_chain if serial else task_ask_chain.get()), asker.path)
        if cell.max_concurrency == 1 and cell.path in chain:
            cycle = (*chain[chain.index(cell.path) :], cell.path)
            raise AskCycleError(cycle, type(message).__qualname__)
        # Deadlocks that no chain shows (independent asks, concurrent actors with every slot
        # waiting, starts): on the graph of who waits on whom right now. This first look (a
        # free slot, or a holder waiting on nothing) is all an ask to an actor that is not
        # itself waiting costs; the search (_waits) runs only past it.
        waiter: Waiter | None = asker if serial else task_activity.get()
        activities = cell.activities
        if waiter is not None and (
            len(activities) >= cell.max_concurrency
            if cell.started and activities is not None
            else cell.waiting_on is not None
        ):
            cycle_found = find_deadlock(waiter, asker, cell)
            if cycle_found is not None:
                raise AskCycleError(cycle_found, type(message).__qualname__)
        request = Request(message, cell, chain)
        if not cell.mailbox.put_nowait(request, priority):
            await self._wait_to_queue(request, priority)
        if waiter is None:
            return await request.wait()
        waiter.waiting_on, waiter.waiting_for = cell, request
        try:
            return await request.wait()
        finally:
            if waiter.waiting_for is request:
                waiter.waiting_on = waiter.waiting_for = None

    async def stop(self) -> None:
        cell = self._cell
        if get_ident() != self._thread:
            raise self._wrong_thread("stop", None)
        await checkpoint_if_cancelled()
        deadline = cell.stop_deadline()
        while cell.state is not ActorState.STOPPED:
            await cell.request_stop(deadline=deadline).wait()
            if cell.last_exit is not ExitReason.CRASHED:
                return
            # A crash beat the stop request to it; its supervisor may restart it, so ask again.
        await checkpoint()

    # -- other threads --------------------------------------------------------------------------

    def _wrong_thread(self, method: str, message: object) -> RuntimeError:
        what = f" {type(message).__qualname__}" if message is not None else ""
        return RuntimeError(
            f"ref.{method}{what} to actor {self._cell.path!r} called from a thread that is not "
            "its actor system's Trio thread; nothing was sent. From a plain def handler or "
            f"another thread: ref.try_tell(msg) is thread-safe, and trio.from_thread.run(ref."
            f"{method}, ...) (with trio_token=system.trio_token outside handlers) runs "
            f"ref.{method} on the system's loop; from a synchronous program, use a portal "
            "(triactor.start_in_thread)"
        )

    def _try_tell_from_thread(self, message: M, priority: int) -> bool:
        try:
            trio.lowlevel.current_task()
        except RuntimeError:
            pass  # no Trio loop in this thread: it may block until the system's loop answers
        else:
            raise RuntimeError(
                f"ref.try_tell {type(message).__qualname__} to actor {self._cell.path!r} "
                "called from another Trio loop's thread; nothing was sent. Hand it to a worker "
                "thread: await trio.to_thread.run_sync(ref.try_tell, msg)"
            )
        try:
            queued: bool = trio.from_thread.run_sync(
                functools.partial(self.try_tell, message, priority=priority),
                trio_token=self._cell.system.trio_token,
            )
        except trio.RunFinishedError:
            self._cell.dead_letter(
                message, DeadLetterReason.ACTOR_STOPPED, "its actor system has stopped"
            )
            return False
        return queued
