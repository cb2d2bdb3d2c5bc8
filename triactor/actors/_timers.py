"""Timers: messages an actor sends itself later, or every so often (``self.timers``).

A timer belongs to one incarnation of one actor. Its task sleeps in a nursery that the
incarnation's own task holds open (opened the first time a timer is started, so an actor that
uses no timer pays nothing); when the time comes it posts the timer itself into the control
lane of the actor's mailbox, and the actor's loop handles the timer's message like any other
message, one at a time. Stopping or restarting the actor closes its timers: their tasks are
cancelled and a tick still queued is skipped, so a timer never fires into another incarnation
and never becomes a dead letter.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Hashable
from typing import TYPE_CHECKING, Final, final

import trio

from .._errors import NoHandler

if TYPE_CHECKING:
    from ._cell import ActorCell

__all__ = ["HOST_REQUEST", "Timer", "Timers"]


@final
class Timer:
    """One started timer, and the tick it posts into the control lane. Internal.

    At most one tick of a timer is queued at a time: a periodic timer sleeps its next interval
    only after the loop has handled the previous tick (fixed delay), so ticks never pile up
    behind a slow handler.
    """

    __slots__ = ("_handled", "after", "cancelled", "interval", "key", "message", "scope")

    def __init__(
        self, key: Hashable, message: object, after: float, interval: float | None
    ) -> None:
        self.key = key
        self.message = message
        self.after = after
        #: Seconds between a handled tick and the next one; None for a one-shot timer.
        self.interval = interval
        #: Set once the timer is cancelled, replaced, or its incarnation has ended.
        self.cancelled = False
        self.scope = trio.CancelScope()
        self._handled: trio.Event | None = None

    def __repr__(self) -> str:
        kind = "once" if self.interval is None else f"every {self.interval:g} s"
        state = ", cancelled" if self.cancelled else ""
        return f"<Timer {self.key!r} {type(self.message).__qualname__} {kind}{state}>"

    def cancel(self) -> None:
        """Stop the timer: its task ends, and a tick of it still queued will be skipped."""
        self.cancelled = True
        self.scope.cancel()

    def handled(self) -> None:
        """Called by the actor's loop once the tick was handled (or skipped)."""
        if self._handled is not None:
            self._handled.set()

    async def run(self, timers: Timers) -> None:
        """The timer's task: sleep, post a tick, wait until it is handled, repeat (periodic)."""
        with self.scope:
            await trio.sleep(self.after)
            while True:
                self._handled = trio.Event() if self.interval is not None else None
                timers.post(self)
                if self._handled is None:
                    return
                await self._handled.wait()
                await trio.sleep(self.interval)  # type: ignore[arg-type]


#: Queued in the control lane when a timer is started while the actor's loop runs without a
#: nursery for timers: the loop then re-enters itself inside one.
HOST_REQUEST: Final = Timer(None, None, 0.0, None)


def _seconds(value: object, what: str, owner: str, *, positive: bool) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TypeError(f"{owner}: {what} must be a number of seconds, got {value!r}")
    if math.isnan(value) or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{owner}: {what} must be {bound} seconds, got {value!r}")
    return float(value)


@final
class Timers:
    """The timers of one incarnation of an actor: ``self.timers`` inside the actor.

    A timer sends the actor a message of its own later (:meth:`once`) or repeatedly
    (:meth:`every`), through its mailbox, so its handler runs like any other: one message at a
    time, with the usual crash handling. Each timer has a key; starting a timer with a key in
    use replaces the old timer, and :meth:`cancel` stops one::

        class Poller(Actor):
            async def on_start(self) -> None:
                self.timers.every("poll", Poll(), interval=5.0)

            @handler
            async def poll(self, msg: Poll) -> None:
                ...                             # runs every 5 s after the previous poll ended
                if done:
                    self.timers.cancel("poll")

    Timers belong to one incarnation: a stop request or a restart cancels them all (a
    restarted actor starts its timers again in ``on_start``), and a tick is never a dead
    letter. A tick waits for the message being handled, never for the queue behind it: it goes
    through the mailbox's control lane, which a full mailbox never blocks or drops.

    A periodic timer has a fixed delay (like Akka's ``startTimerWithFixedDelay``): the next
    interval starts when the previous tick has been handled, so a slow handler delays ticks
    instead of piling them up; at most one tick per timer is ever queued.

    Call these methods from the actor's own code: handlers (``def`` handlers too, from their
    worker thread), ``__init__``, ``on_start``. Started after the actor was asked to stop, a
    timer is ignored (the incarnation is ending).
    """

    __slots__ = ("_cell", "_closed", "_nursery", "_pending", "_requested", "_timers")

    def __init__(self, cell: ActorCell) -> None:
        self._cell = cell
        self._timers: dict[Hashable, Timer] = {}
        self._nursery: trio.Nursery | None = None
        # Timers started before the incarnation had a nursery for them.
        self._pending: list[Timer] = []
        self._requested = False
        self._closed = False

    def __repr__(self) -> str:
        keys = ", ".join(repr(key) for key in self._timers)
        return f"<Timers of {self._cell.path}: {keys or 'none'}>"

    def __len__(self) -> int:
        return len(self._timers)

    def __contains__(self, key: object) -> bool:
        return key in self._timers

    # -- the API --------------------------------------------------------------------------------

    def once(self, key: Hashable, message: object, *, after: float) -> None:
        """Send ``message`` to this actor once, ``after`` seconds from now.

        Replaces the timer with the same key, if any. The key is free again once the message
        has been handled.

        Raises:
            TypeError: if ``after`` is not a number.
            ValueError: if ``after`` is negative.
            NoHandler: if the actor has no handler for the message's type.
        """
        owner = f"timers.once({key!r}) of actor {self._cell.path!r}"
        delay = _seconds(after, "after", owner, positive=False)
        self._add(Timer(key, message, delay, None))

    def every(
        self, key: Hashable, message: object, *, interval: float, after: float | None = None
    ) -> None:
        """Send ``message`` to this actor every ``interval`` seconds, with a fixed delay.

        The first tick comes ``after`` seconds from now (default: ``interval``); each later one
        ``interval`` seconds after the previous one was handled. Replaces the timer with the
        same key, if any.

        Raises:
            TypeError: if ``interval`` or ``after`` is not a number.
            ValueError: if ``interval`` is not positive or ``after`` is negative.
            NoHandler: if the actor has no handler for the message's type.
        """
        owner = f"timers.every({key!r}) of actor {self._cell.path!r}"
        period = _seconds(interval, "interval", owner, positive=True)
        first = period if after is None else _seconds(after, "after", owner, positive=False)
        self._add(Timer(key, message, first, period))

    def cancel(self, key: Hashable) -> None:
        """Stop the timer with this key (a tick of it already queued is skipped).

        Cancelling a key with no timer does nothing.
        """
        if self._foreign_thread():
            trio.from_thread.run_sync(self.cancel, key, trio_token=self._cell.system.trio_token)
            return
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()

    def cancel_all(self) -> None:
        """Stop every timer of this actor."""
        if self._foreign_thread():
            trio.from_thread.run_sync(self.cancel_all, trio_token=self._cell.system.trio_token)
            return
        timers, self._timers = self._timers, {}
        for timer in timers.values():
            timer.cancel()

    # -- the runtime's side ---------------------------------------------------------------------

    def _foreign_thread(self) -> bool:
        return threading.get_ident() != self._cell.system.thread_ident

    def _add(self, timer: Timer) -> None:
        if self._cell.handlers.lookup(type(timer.message)) is None:
            raise NoHandler(
                f"actor {self._cell.path!r} ({self._cell.actor_class.__qualname__}) has no "
                f"handler for {type(timer.message).__qualname__}, so timer {timer.key!r} would "
                "fire into nothing. Add an @handler method taking that type"
            )
        if self._foreign_thread():
            trio.from_thread.run_sync(self._add, timer, trio_token=self._cell.system.trio_token)
            return
        if self._closed:
            return
        old = self._timers.pop(timer.key, None)
        if old is not None:
            old.cancel()
        self._timers[timer.key] = timer
        if self._nursery is not None:
            self._nursery.start_soon(timer.run, self)
            return
        self._pending.append(timer)
        if not self._requested:
            # The loop (if it already runs) re-enters itself in a nursery that hosts timers.
            self._requested = True
            self._cell.mailbox.put_control(HOST_REQUEST)

    @property
    def waiting(self) -> bool:
        """Whether timers wait for a nursery to run in (see :meth:`attach`)."""
        return bool(self._pending) and not self._closed

    def attach(self, nursery: trio.Nursery) -> None:
        """Run timers in ``nursery`` (held by the incarnation's task) from now on."""
        self._nursery = nursery
        pending, self._pending = self._pending, []
        for timer in pending:
            nursery.start_soon(timer.run, self)

    def post(self, timer: Timer) -> None:
        """Queue a tick of ``timer`` in the actor's control lane (from the timer's task)."""
        if not timer.cancelled:
            self._cell.mailbox.put_control(timer)

    def fired(self, timer: Timer) -> None:
        """Called once a tick was handled: frees a one-shot timer's key, re-arms a periodic."""
        if timer.interval is None and self._timers.get(timer.key) is timer:
            del self._timers[timer.key]
        timer.handled()

    def close(self) -> None:
        """Cancel every timer and refuse new ones: the incarnation is ending."""
        self._closed = True
        self._pending.clear()
        self.cancel_all()
