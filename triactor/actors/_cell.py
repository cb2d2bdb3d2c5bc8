"""The runtime of one actor: its mailbox, its ref, and the loop that runs each incarnation.

A cell outlives incarnations: a supervisor restarts an actor by running a new incarnation (a
fresh instance) on the same cell, so the name, the ref and the queued messages survive.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Final, final

import outcome
import trio
from trio.lowlevel import checkpoint, disable_ki_protection, enable_ki_protection

from .._errors import ActorStopped, MailboxFull, NoHandler
from .._groups import unwrapped_group
from .._hot import duration_clock
from .._logging import logger
from .._safe import add_note, safe_repr
from ..mailbox import EMPTY, Mailbox, Overflow
from ..pools._context import default_priority
from ..pools._owner import default_owner
from ._actor import Actor
from ._dead_letters import DeadLetterReason
from ._request import Request
from ._system_message import SystemMessage
from ._threads import HandlerThread
from ._timers import HOST_REQUEST, Timer
from ._waits import HandlerActivity, task_activity

if TYPE_CHECKING:
    from loguru import Logger

    from ._ref import LocalActorRef
    from ._system import ActorSystem

__all__ = ["ActorCell", "ActorState", "ExitReason", "current_cell", "task_ask_chain"]

#: The cell of the actor whose task is running (None outside actors); set once per incarnation.
current_cell: ContextVar[ActorCell | None] = ContextVar("triactor_current_cell", default=None)

#: In a handler task of a ``max_concurrency > 1`` actor: the ask chain of the request it
#: handles (serial actors keep theirs on the cell, as ``ask_chain``).
task_ask_chain: ContextVar[tuple[str, ...]] = ContextVar("triactor_task_ask_chain", default=())

# A busy actor whose handlers never wait (its mailbox never empty) yields to the scheduler, so
# that it cannot starve the other tasks: every _BATCH messages it looks at how long the step
# has run, and yields once that is _QUANTUM seconds or _MAX_BATCHES looks (its clock may be a
# MockClock, which stands still within a step). Slow handlers thus still yield every _BATCH
# messages. A step costs the scheduler more than a thousand trivial messages; yielding every
# 64 cost fast actors a fifth of their throughput.
_BATCH: Final = 64
_MAX_BATCHES: Final = 16
_QUANTUM: Final = 0.0005


class ActorState(enum.Enum):
    """Where an actor is in its life.

    Attributes:
        STARTING: constructing the instance or running ``on_start``.
        IDLE: running, waiting for a message (internally: running at all).
        PROCESSING: running, handling a message.
        STOPPING: a stop was requested; draining or running ``on_stop``.
        RESTARTING: between two incarnations, waiting for its supervisor to start it again.
        STOPPED: stopped for good; its mailbox is closed.
    """

    STARTING = "starting"
    IDLE = "idle"
    PROCESSING = "processing"
    STOPPING = "stopping"
    RESTARTING = "restarting"
    STOPPED = "stopped"


class ExitReason(enum.Enum):
    """How an incarnation (or the actor, when final) ended.

    Attributes:
        NORMAL: it stopped on request (``ref.stop()``, ``self.stop()``, a shutdown).
        CRASHED: an exception escaped a handler, ``on_start`` or the constructor.
        CANCELLED: it was cancelled (a shutdown timeout passed, or an enclosing scope).
    """

    NORMAL = "normal"
    CRASHED = "crashed"
    CANCELLED = "cancelled"


@final
class _Stop:
    __slots__ = ("drain",)

    def __init__(self, drain: bool) -> None:
        self.drain = drain


def _message_of(item: object) -> object:
    return item.message if item.__class__ is Request else item


def _describe(item: object) -> str:
    return type(_message_of(item)).__qualname__


@final
class ActorCell:
    """Everything the runtime keeps for one actor across its incarnations. Internal."""

    __slots__ = (
        "_log",
        "_now",
        "_orphans",
        "_scope",
        "_stamp",
        "_stop_deadline",
        "_stop_event",
        "_terminated",
        "_watchers",
        "activities",
        "actor_class",
        "args",
        "ask_chain",
        "busy_since",
        "check_messages",
        "current",
        "draining",
        "exit_error",
        "exit_reason",
        "failures",
        "handlers",
        "instance",
        "kwargs",
        "last_exit",
        "mailbox",
        "max_concurrency",
        "name",
        "path",
        "processed",
        "ref",
        "restarts",
        "resume_on",
        "shutdown_timeout",
        "started",
        "state",
        "system",
        "task",
        "waiting_for",
        "waiting_on",
    )

    def __init__(
        self,
        system: ActorSystem,
        actor_class: type[Actor],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        name: str,
        path: str,
        mailbox_capacity: int,
        overflow: Overflow,
        max_concurrency: int,
        shutdown_timeout: float,
        resume_on: tuple[type[Exception], ...] = (),
    ) -> None:
        from ._ref import LocalActorRef

        self.system = system
        self.check_messages = system.check_messages
        self.actor_class = actor_class
        self.handlers = actor_class.__triactor_handlers__
        self.args = args
        self.kwargs = kwargs
        self.name = name
        self.path = path
        self.max_concurrency = max_concurrency
        self.shutdown_timeout = shutdown_timeout
        #: Exception types a handler may raise without crashing the actor (see Actor).
        self.resume_on = resume_on
        self.mailbox = Mailbox(
            mailbox_capacity, overflow, owner=path, on_drop=self._dropped, describe=_describe
        )
        self.ref: LocalActorRef = LocalActorRef(self)
        self.state = ActorState.STARTING
        #: Whether the current incarnation got past ``on_start`` (a later error is a crash).
        self.started = False
        #: Whether the current incarnation is draining its mailbox before a graceful stop.
        self.draining = False
        self.instance: Actor | None = None
        #: The message being handled now (None when idle) and since when (Trio time).
        self.current: object = None
        self.busy_since = 0.0
        #: The clock busy_since is read on (see triactor._hot.duration_clock).
        self._stamp: Callable[[], float] = trio.current_time
        #: The actors waiting, through nested asks, on the request being handled now (or, in
        #: on_start, on this actor's start).
        self.ask_chain: tuple[str, ...] = ()
        #: What the serial handler (or on_start) waits on now: see ``_waits``.
        self.waiting_on: ActorCell | None = None
        self.waiting_for: Request | None = None
        #: The handler tasks of a ``max_concurrency > 1`` actor, while its loop runs.
        self.activities: set[HandlerActivity] | None = None
        self._now: Callable[[], float] = trio.current_time
        #: The Trio task running the current incarnation (None between incarnations).
        self.task: trio.lowlevel.Task | None = None
        self.processed = 0
        self.failures = 0
        self.restarts = 0
        #: How the last incarnation ended (None before the first ended).
        self.last_exit: ExitReason | None = None
        self.exit_reason: ExitReason | None = None
        self.exit_error: BaseException | None = None
        self._terminated: trio.Event | None = None
        self._scope: trio.CancelScope | None = None
        self._stop_event: trio.Event | None = None
        self._stop_deadline = math.inf
        self._watchers: list[Callable[[ActorCell], None]] | None = None
        self._log: Logger | None = None
        # Sync handler calls whose thread runs on after the task stopped waiting for it.
        self._orphans: set[HandlerThread] | None = None

    def __repr__(self) -> str:
        return f"<ActorCell {self.path} {self.activity.value}>"

    @property
    def activity(self) -> ActorState:
        """The state, with a running actor shown as PROCESSING while it handles a message."""
        if self.state is ActorState.IDLE and self.current is not None:
            return ActorState.PROCESSING
        return self.state

    def busy_for(self) -> float:
        """Seconds (Trio time) spent on the current message so far; 0.0 when idle."""
        return 0.0 if self.current is None else self._stamp() - self.busy_since

    @property
    def log(self) -> Logger:
        """A loguru logger bound with this actor's path (made on first use)."""
        if self._log is None:
            self._log = logger.bind(actor=self.path)
        return self._log

    @property
    def terminated(self) -> trio.Event:
        """An event set when the actor has stopped for good (made on first use)."""
        if self._terminated is None:
            self._terminated = trio.Event()
            if self.state is ActorState.STOPPED:
                self._terminated.set()
        return self._terminated

    # -- dead letters ---------------------------------------------------------------------------

    def dead_letter(self, item: object, reason: DeadLetterReason, detail: str = "") -> None:
        """Record ``item`` (a message or a request) as undeliverable to this actor."""
        self.system.dead_letters._record(self.path, _message_of(item), reason, detail)

    def _dropped(self, item: object, policy: Overflow) -> None:
        reason = (
            DeadLetterReason.DROPPED_NEWEST
            if policy is Overflow.DROP_NEWEST
            else DeadLetterReason.DROPPED_OLDEST
        )
        self.dead_letter(item, reason)
        if item.__class__ is Request and not item.abandoned:
            item.complete(
                outcome.Error(
                    MailboxFull(
                        f"mailbox of actor {self.path!r} is full ({self.mailbox.capacity} "
                        f"messages, Overflow.{policy.name}); the request {_describe(item)} was "
                        "dropped. Retry later, or raise mailbox_capacity"
                    )
                )
            )

    def late_reply(self, request: Request, result: outcome.Outcome[Any]) -> None:
        """Send the reply to an abandoned ask to dead letters, labelled late."""
        if isinstance(result, outcome.Value):
            reply: object = result.value
        else:
            assert isinstance(result, outcome.Error)
            reply = result.error
        self.system.dead_letters._record(
            self.path,
            reply,
            DeadLetterReason.LATE_REPLY,
            f"reply to {type(request.message).__qualname__} after the asker stopped waiting",
        )

    # -- stopping -------------------------------------------------------------------------------

    @enable_ki_protection
    def request_stop(self, drain: bool = False, deadline: float = math.inf) -> trio.Event:
        """Ask the actor to stop after the current message, through the control lane.

        With ``drain`` it first handles what is queued (and refuses new messages). A finite
        ``deadline`` (Trio time) cancels the incarnation if it is still running then; the
        cancellation is logged. Returns an event set when the incarnation that takes the
        request has ended, or when the actor is stopped for good. A second request while one is
        pending returns the same event (an earlier deadline still applies).
        """
        if deadline < self._stop_deadline:
            self._stop_deadline = deadline
            if self._scope is not None and not self._stops_at_once():
                self._scope.deadline = deadline
        if self._stop_event is None:
            self._stop_event = trio.Event()
            if self.state is ActorState.STOPPED:
                self._stop_event.set()
            else:
                self.mailbox.put_control(_Stop(drain))
        return self._stop_event

    def _stops_at_once(self) -> bool:
        """Whether a stop request now is taken before anything else can run in this actor: a
        one-message-at-a-time actor (not a supervisor) parked on its empty mailbox. Its stop
        deadline is then applied only if it finds messages to drain (see ``_take_stop``),
        which spares the cancel scope a deadline for the common case of an idle actor."""
        instance = self.instance
        return (
            self.max_concurrency == 1
            and self.mailbox.consumer_waiting
            and instance is not None
            and type(instance)._triactor_run is Actor._triactor_run
        )

    def stop_deadline(self) -> float:
        """The Trio time by which a stop asked for now must be done: now + shutdown_timeout."""
        return self._now() + self.shutdown_timeout

    def add_watcher(self, callback: Callable[[ActorCell], None]) -> None:
        """Call ``callback(cell)`` once when the actor stops for good (at once if it has)."""
        if self.state is ActorState.STOPPED:
            callback(self)
        elif self._watchers is None:
            self._watchers = [callback]
        else:
            self._watchers.append(callback)

    @enable_ki_protection
    def finalize(self, reason: ExitReason, error: BaseException | None = None) -> None:
        """Mark the actor stopped for good: close the mailbox, dead-letter what it still holds.

        Queued asks fail with :class:`ActorStopped`. Watchers are notified once. Idempotent.
        """
        if self.state is ActorState.STOPPED:
            return
        self.state = ActorState.STOPPED
        self.exit_reason = reason
        self.exit_error = error
        self.instance = None
        self.mailbox.close()
        unhandled = 0
        for item in self.mailbox.drain():
            if item.__class__ is Request and item.release():
                continue  # a transport's message: handed back for another host, not lost
            unhandled += 1
            self.dead_letter(item, DeadLetterReason.ACTOR_STOPPED)
            if item.__class__ is Request and not item.abandoned:
                item.complete(outcome.Error(self.stopped_error(_message_of(item))))
        if unhandled:
            self.log.warning(
                "actor {} stopped ({}) with {} queued messages unhandled; they went to dead "
                "letters",
                self.path,
                reason.value,
                unhandled,
            )
            self.system._lost_in_shutdown(dropped=unhandled)
        self.system._forget(self)
        if self._stop_event is not None:
            self._stop_event.set()
        if self._terminated is not None:
            self._terminated.set()
        watchers, self._watchers = self._watchers, None
        for callback in watchers or ():
            callback(self)

    def stopped_error(self, message: object) -> ActorStopped:
        """The error an asker gets when this actor cannot answer ``message`` any more."""
        why = self.exit_reason.value if self.exit_reason else "stopping"
        return ActorStopped(
            f"actor {self.path!r} has stopped ({why}); "
            f"it cannot answer {type(message).__qualname__}. Look it up again if a supervisor "
            "restarts it under the same name, or check why it stopped in the log"
        )

    # -- running --------------------------------------------------------------------------------

    @disable_ki_protection  # user code: a Ctrl-C interrupts a constructor where it is
    def construct(self) -> Actor:
        """Make a fresh instance of the actor class with the context set before ``__init__``.

        Raises:
            Exception: whatever the actor's constructor raised.
        """
        self.state = ActorState.STARTING
        self.started = False
        self.draining = False
        cls = self.actor_class
        instance = cls.__new__(cls)
        instance._triactor_cell = self
        instance.__init__(*self.args, **self.kwargs)  # type: ignore[misc]
        return instance

    async def run_incarnation(
        self, instance: Actor, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> ExitReason:
        """Start ``instance`` (from :meth:`construct`) and handle messages until told to stop.

        Calls ``task_status.started()`` once ``on_start`` has returned. Returns
        ``ExitReason.NORMAL`` after a stop request (``CANCELLED`` if its stop deadline ended it);
        raises what crashed it, or ``Cancelled`` from an enclosing scope. ``on_stop`` always
        runs, shielded and bounded by ``shutdown_timeout``.
        """
        self.instance = instance
        self.task = trio.lowlevel.current_task()
        current_cell.set(self)
        default_owner.set(self.path)  # an actor's tasks take one turn together in pools
        # Always set, so an actor never inherits the pool priority of the task that spawned it.
        default_priority.set(self.actor_class.priority)
        self.last_exit = ExitReason.CRASHED  # until the incarnation ends otherwise
        try:
            with trio.CancelScope(deadline=self._stop_deadline) as scope:
                self._scope = scope
                if type(instance)._triactor_run is Actor._triactor_run:
                    await self._start_and_serve(instance, task_status)  # the hook does only this
                else:
                    await instance._triactor_run(self._start_and_serve, instance, task_status)
            if scope.cancelled_caught:
                self.log.warning(
                    "actor {} did not stop by its shutdown deadline ({} s); it was cancelled",
                    self.path,
                    self.shutdown_timeout,
                )
                self.system._lost_in_shutdown(cancelled=1)
                self.last_exit = ExitReason.CANCELLED
                if not self.started:
                    raise ActorStopped(
                        f"actor {self.path!r} was stopped before its on_start finished"
                    )
                return ExitReason.CANCELLED
            self.last_exit = ExitReason.NORMAL
            return ExitReason.NORMAL
        except trio.Cancelled:
            self.last_exit = ExitReason.CANCELLED
            raise
        finally:
            self._scope = None
            try:
                self.state = ActorState.STOPPING
                # The incarnation's timers end with it; a tick still queued never reaches the
                # next.
                if instance._triactor_timers is not None:
                    instance._triactor_timers.close()
                    self.mailbox.discard_control(Timer)
                if self._orphans or type(instance).on_stop is not Actor.on_stop:
                    await self._wind_down(instance)
            finally:
                self._end_incarnation()

    @enable_ki_protection
    def _end_incarnation(self) -> None:
        self.state = ActorState.RESTARTING  # until restarted, or finalized as STOPPED
        self.task = None
        self.ask_chain = ()
        self.waiting_on = self.waiting_for = None
        self.activities = None
        # However the incarnation ended, a pending stop request is now satisfied: drop it, so
        # that it cannot stop the next incarnation too. (Set on every path: ref.stop() and
        # shutdowns wait for it.)
        stop_event = self._stop_event
        if stop_event is not None:
            self.mailbox.discard_control(_Stop)
            self._stop_event = None
            self._stop_deadline = math.inf
            stop_event.set()

    async def _start_and_serve(self, instance: Actor, task_status: trio.TaskStatus[None]) -> None:
        if self._orphans:
            # One handler at a time, across incarnations too: a sync handler of the previous
            # incarnation that a stop could not cancel still runs in its thread.
            self.log.warning(
                "actor {} waits for {} sync handler(s) of its previous incarnation, still "
                "running in worker threads (threads cannot be cancelled), before it starts",
                self.path,
                len(self._orphans),
            )
            await self._wait_for_orphans()
        if type(instance).on_start is not Actor.on_start:
            await instance.on_start()
        self.ask_chain = ()  # the chain of whoever started it: only for on_start's asks
        self.state = ActorState.IDLE
        self.started = True
        self._now = trio.lowlevel.current_clock().current_time
        self._stamp = duration_clock()
        task_status.started()
        if self.max_concurrency != 1:
            await self._serve_concurrently(instance)
            return
        timers = instance._triactor_timers
        if (timers is None or not timers.waiting) and not await self._serve_serially(instance):
            return
        # Timers were started: serve on inside a nursery that hosts their tasks (opened only
        # now, so that an actor without timers costs no nursery).
        await self._serve_hosting_timers(instance)

    @enable_ki_protection  # its nursery must be exited on every path, even a Ctrl-C's
    async def _serve_hosting_timers(self, instance: Actor) -> None:
        timers = instance._triactor_timers
        assert timers is not None
        with unwrapped_group():
            async with trio.open_nursery() as nursery:
                timers.attach(nursery)
                try:
                    await self._serve_serially(instance)
                finally:
                    timers.close()

    async def _wind_down(self, instance: Actor) -> None:
        """Wait for orphaned handler threads, then run ``on_stop``: shielded, within the
        shutdown timeout. ``on_stop`` is skipped if a handler thread still runs then."""
        with trio.CancelScope(shield=True) as scope:
            scope.relative_deadline = self.shutdown_timeout
            if self._orphans:
                await self._wait_for_orphans()
            if type(instance).on_stop is not Actor.on_stop:
                await self._run_on_stop(instance)
        if scope.cancelled_caught:
            if self._orphans:
                self.log.warning(
                    "actor {}: {} sync handler(s) still run in worker threads after its "
                    "shutdown_timeout of {} s (threads cannot be cancelled); their messages "
                    "are accounted when they return, on_stop was skipped, and a restart waits "
                    "for them",
                    self.path,
                    len(self._orphans),
                    self.shutdown_timeout,
                )
            else:
                self.log.warning(
                    "on_stop of actor {} did not finish within its shutdown_timeout of {} s; "
                    "it was cancelled",
                    self.path,
                    self.shutdown_timeout,
                )

    async def _run_on_stop(self, instance: Actor) -> None:
        if self._orphans:
            return  # a handler still runs in a thread: on_stop must not run beside it
        try:
            await instance.on_stop()
        except Exception as exc:
            self.log.opt(exception=exc).error(
                "on_stop of actor {} raised {}; ignored", self.path, safe_repr(exc)
            )

    async def _wait_for_orphans(self) -> None:
        while self._orphans:
            call = next(iter(self._orphans))
            assert call.done is not None
            await call.done.wait()

    # Unprotected, even when a protected frame above hosts timers (or is a supervisor's): the
    # handlers it runs are user code, which a Ctrl-C must interrupt where it is.
    @disable_ki_protection
    async def _serve_serially(self, instance: Actor) -> bool:
        """Handle messages until a stop request; True if it must re-enter to host timers."""
        mailbox = self.mailbox
        pop = mailbox.pop_nowait
        lane = mailbox.default_lane
        handle = self._handle
        # The async handlers already resolved (lookup, in _handle, adds a type seen first).
        fast_routes = self.handlers.async_routes
        stamp = self._stamp
        # The type of the told message handled last, and its handler.
        last_kind: type | None = None
        last_fn: Any = None
        item: Any
        # Messages left before the next look at the step's length; looks taken in this step.
        budget = _BATCH
        batches = 0
        step_mark = stamp()
        try:
            while True:
                budget -= 1
                if not budget:
                    # Every _BATCH messages handled without waiting: yield once the step has
                    # gone on for _QUANTUM (timed from its start), or after _MAX_BATCHES looks.
                    budget = _BATCH
                    batches += 1
                    if batches >= _MAX_BATCHES or self.busy_since - step_mark >= _QUANTUM:
                        self.current = None
                        batches = 0
                        await checkpoint()
                        step_mark = stamp()
                if mailbox.plain and lane:
                    item = lane.popleft()  # only the default lane in use: pop_nowait's own step
                else:
                    item = pop()
                    if item is EMPTY:
                        if self.draining:
                            return False
                        budget = _BATCH
                        batches = 0
                        self.current = None
                        await mailbox.wait()
                        step_mark = stamp()
                        continue
                    if item.__class__ is _Stop:
                        if self._take_stop(item):
                            return False
                        continue
                    if item.__class__ is Timer:
                        if item is HOST_REQUEST:
                            timers = instance._triactor_timers
                            if timers is not None and timers.waiting:
                                return True
                            continue
                        await self._fire(instance, item)
                        continue
                # The hot paths: an async handler already resolved, _handle inlined (the same
                # steps, without a coroutine and a lookup per message).
                kind = item.__class__
                if kind is not last_kind:  # else a told message of the type handled last
                    if kind is Request:
                        message = item.message
                        reply_fn = fast_routes.get(message.__class__)
                        if reply_fn is None or item.abandoned:
                            await handle(instance, item)  # a sync handler, a new type, expired
                            continue
                        self.current = message
                        self.ask_chain = item.chain
                        self.busy_since = stamp()
                        try:
                            result = await reply_fn(instance, message)
                        except Exception as exc:
                            if not self._crashed(message, item, exc):
                                raise
                        except BaseException:
                            self._not_handled(message, item)
                            raise
                        else:
                            self.processed += 1
                            item.complete(outcome.Value(result))
                        finally:
                            self.current = None
                            self.ask_chain = ()
                        continue
                    fn = fast_routes.get(kind)
                    if fn is None:
                        await handle(instance, item)  # a sync handler, a new type, no handler
                        continue
                    last_kind, last_fn = kind, fn
                self.current = item
                self.busy_since = stamp()
                try:
                    await last_fn(instance, item)
                except Exception as exc:
                    self.current = None
                    if not self._crashed(item, None, exc):
                        raise
                except BaseException:
                    self.current = None
                    self._not_handled(item, None)
                    raise
                else:
                    self.processed += 1
                # self.current stays set until the next message (or the next yield): no other
                # task runs in between to see it.
        finally:
            self.current = None

    @enable_ki_protection  # its nursery must be exited on every path, even a Ctrl-C's
    async def _serve_concurrently(self, instance: Actor) -> None:
        slots = trio.Semaphore(self.max_concurrency)
        activities: set[HandlerActivity] = set()
        self.activities = activities

        async def handle_then_release(item: object) -> None:
            if item.__class__ is Request:
                task_ask_chain.set(item.chain)  # this task's own, for asks it makes
            activity = HandlerActivity(trio.lowlevel.current_task())
            task_activity.set(activity)
            activities.add(activity)
            try:
                if item.__class__ is Timer:
                    await self._fire(instance, item)
                else:
                    await self._handle(instance, item)
            finally:
                activities.discard(activity)
                slots.release()

        with unwrapped_group():
            async with trio.open_nursery() as nursery:
                timers = instance.timers  # hosted in the handlers' nursery
                timers.attach(nursery)
                try:
                    await self._dispatch_concurrently(nursery, slots, handle_then_release)
                finally:
                    timers.close()

    async def _dispatch_concurrently(
        self,
        nursery: trio.Nursery,
        slots: trio.Semaphore,
        handle_then_release: Callable[[object], Any],
    ) -> None:
        mailbox = self.mailbox
        while True:
            # Take a slot before a message, so that no message is ever held while waiting:
            # a cancellation here loses nothing.
            await slots.acquire()
            item = mailbox.pop_nowait()
            if item is EMPTY or item.__class__ is _Stop or item is HOST_REQUEST:
                slots.release()
            if item is HOST_REQUEST:
                continue  # timers are hosted here from the start
            if item is EMPTY:
                if self.draining:
                    return
                await mailbox.wait()
                continue
            if item.__class__ is _Stop:
                if self._take_stop(item):
                    return  # handlers in flight finish; the shutdown timeout bounds them
                continue
            nursery.start_soon(handle_then_release, item)

    def _take_stop(self, stop: _Stop) -> bool:
        """Act on a stop request: True to end the loop now, False to drain the mailbox first."""
        instance = self.instance
        if instance is not None and instance._triactor_timers is not None:
            instance._triactor_timers.close()  # timers end with the incarnation's stop
        if not stop.drain:
            return True
        self.draining = True
        self.mailbox.close()  # refuse new messages; what is queued is still handled
        scope = self._scope
        if scope is not None and scope.deadline != self._stop_deadline and len(self.mailbox):
            scope.deadline = self._stop_deadline  # deferred by request_stop: due now
        return False

    async def _fire(self, instance: Actor, timer: Timer) -> None:
        # A tick of a cancelled or replaced timer (or one of an ended incarnation) is skipped.
        if timer.cancelled:
            return
        try:
            await self._handle(instance, timer.message)
        finally:
            timers = instance._triactor_timers
            if timers is not None:
                timers.fired(timer)

    async def _handle(self, instance: Actor, item: object) -> None:
        if item.__class__ is Request:
            if item.abandoned:
                self._expired(item)
                return
            request: Request | None = item
            message = item.message
            self.ask_chain = item.chain
        else:
            request = None
            message = item
        entry = self.handlers.lookup(message.__class__)
        if entry is None:
            self._no_handler(message, request)
            return
        self.current = message
        self.busy_since = self._stamp()
        call: HandlerThread | None = None
        try:
            if entry.is_async:
                result = await entry.fn(instance, message)
            else:
                call = HandlerThread(self, entry.fn, (instance, message), message, request)
                returned = await trio.to_thread.run_sync(
                    call.run,
                    limiter=self.system.thread_limiter,
                    abandon_on_cancel=True,
                )
                assert returned is not None
                result = returned.unwrap()
        except Exception as exc:
            if self._crashed(message, request, exc):
                return  # one of resume_on: the actor goes on
            raise
        except BaseException:
            # Cancelled (or KeyboardInterrupt): not a crash, but the asker must not hang.
            if call is not None and self._give_up_thread(call):
                raise  # the thread runs on (or has just returned): it accounts for the message
            self._not_handled(message, request)
            raise
        finally:
            self.current = None
            if request is not None:
                self.ask_chain = ()
        self.processed += 1
        if request is not None:
            request.complete(outcome.Value(result))

    def _resume(self, message: object, request: Request | None, error: Exception) -> None:
        """A ``resume_on`` error: fail only this message; the actor goes on with its state."""
        if request is not None:
            # To the asker; to dead letters as a late reply if it has stopped waiting.
            request.complete(outcome.Error(error))
            if request.delivery is None:
                return
            # A transport's message (told or asked from another node): recorded here too, so
            # that the error of a remote tell does not vanish with its acknowledgement.
        self.system.dead_letters._record(
            self.path, message, DeadLetterReason.HANDLER_ERROR, safe_repr(error), error
        )

    def _expired(self, request: Request) -> None:
        """Skip a request whose asker stopped waiting before the actor got to it."""
        self.dead_letter(
            request,
            DeadLetterReason.EXPIRED,
            "the asker stopped waiting (timeout or cancellation) before the actor got to it; "
            "it was not handled",
        )

    def _crashed(self, message: object, request: Request | None, exc: Exception) -> bool:
        """Account a handler's exception: count it, tell the asker, dead-letter the message.

        Returns True if it is one of the actor's ``resume_on`` types (the actor goes on).
        """
        self.failures += 1
        # The exception is a user object: nothing here may depend on it behaving.
        add_note(exc, f"raised in actor {self.path!r} while handling {type(message).__qualname__}")
        if self.resume_on and isinstance(exc, self.resume_on):
            self._resume(message, request, exc)
            return True
        # The message becomes a dead letter (CRASHED); an asker still waiting gets the error,
        # while an abandoned ask adds no second dead letter for the same message.
        if request is not None and not request.abandoned:
            request.complete(outcome.Error(exc))
        if not isinstance(message, SystemMessage):
            self.dead_letter(message, DeadLetterReason.CRASHED, safe_repr(exc))
        return False

    def _not_handled(self, message: object, request: Request | None) -> None:
        """Account a message whose handler was stopped before it could finish."""
        if request is not None and request.release():
            return  # a transport's message: handed back (a node stopped mid-message)
        if request is not None and not request.abandoned:
            request.complete(outcome.Error(self.stopped_error(message)))
        if not isinstance(message, SystemMessage):
            self.dead_letter(message, DeadLetterReason.ACTOR_STOPPED, "stopped while handling it")

    # -- sync handlers cut short ----------------------------------------------------------------

    @enable_ki_protection  # the call and the cell's record of it change together
    def _give_up_thread(self, call: HandlerThread) -> bool:
        """Stop waiting for ``call``'s thread; returns whether the thread accounts for it."""
        if not call.give_up():
            return False
        if call.returned:
            self._account_thread(call)  # it returned just as the task stopped waiting
        else:
            if self._orphans is None:
                self._orphans = set()
            self._orphans.add(call)
        return True

    @enable_ki_protection
    def thread_returned_late(self, call: HandlerThread) -> None:
        """Account an orphaned sync handler whose thread has now returned (Trio thread)."""
        if self._orphans is not None:
            self._orphans.discard(call)
        self._account_thread(call)
        if call.done is not None:
            call.done.set()

    def _account_thread(self, call: HandlerThread) -> None:
        result = call.outcome
        message, request = call.message, call.request
        what = type(message).__qualname__
        if isinstance(result, outcome.Value):
            self.processed += 1
            self.log.info(
                "the sync handler of actor {} for {} returned after the actor stopped waiting "
                "for it; the message counts as handled",
                self.path,
                what,
            )
            if request is not None:
                request.complete(result)
            return
        assert isinstance(result, outcome.Error)
        error = result.error
        if isinstance(error, Exception):
            self.log.opt(exception=error).error(
                "the sync handler of actor {} for {} raised after the actor stopped waiting "
                "for it: {}",
                self.path,
                what,
                safe_repr(error),
            )
            self._crashed(message, request, error)
        else:  # it noticed the cancellation (trio.from_thread.check_cancelled) and stopped
            self._not_handled(message, request)

    def _no_handler(self, message: object, request: Request | None) -> None:
        handled = ", ".join(t.__qualname__ for t in self.handlers.handled_types) or "none"
        error = NoHandler(
            f"actor {self.path!r} ({self.actor_class.__qualname__}) has no handler for "
            f"{type(message).__qualname__}; it handles: {handled}. Add an @handler method "
            f"taking {type(message).__qualname__}, or send one of those types"
        )
        if request is not None and not request.abandoned:
            request.complete(outcome.Error(error))
        else:
            self.dead_letter(message, DeadLetterReason.NO_HANDLER, str(error))
