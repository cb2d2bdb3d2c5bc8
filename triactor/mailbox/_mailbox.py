"""The bounded, priority-laned mailbox every actor reads from.

The mailbox knows nothing about actors: it stores opaque items, applies the overflow policy, and
reports what it drops through a callback. One consumer task reads it; any number of tasks write.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Final, final

import attrs
import trio
from outcome import Value
from trio.lowlevel import (
    Abort,
    RaiseCancelT,
    Task,
    checkpoint_if_cancelled,
    current_task,
    enable_ki_protection,
    reschedule,
    wait_task_rescheduled,
)

from .._errors import MailboxFull
from ._overflow import Overflow

__all__ = ["EMPTY", "Mailbox", "MailboxStatistics"]


@final
class _Empty:
    __slots__ = ()

    def __repr__(self) -> str:
        return "EMPTY"


#: Returned by :meth:`Mailbox.pop_nowait` when nothing is queued.
EMPTY: Final = _Empty()


@final
@attrs.frozen
class MailboxStatistics:
    """A snapshot of one mailbox, as ``ref.statistics().mailbox`` reports it.

    Attributes:
        depth: user messages queued now, over all priority lanes.
        capacity: the most user messages the mailbox holds.
        high_water: the largest depth seen since the mailbox was made.
        control_depth: system messages queued in the control lane (not bounded, not counted in
            ``depth``).
        senders_waiting: senders blocked by ``Overflow.BLOCK``, waiting for room.
        dropped: messages the overflow policy dropped since the mailbox was made.
        closed: whether the mailbox refuses new messages (its actor is stopping for good).
    """

    depth: int
    capacity: int
    high_water: int
    control_depth: int
    senders_waiting: int
    dropped: int
    closed: bool


@final
class Mailbox:
    """A bounded queue of user messages with priority lanes, plus an unbounded control lane.

    Items are taken highest priority first (``priority`` is an int, larger is more urgent, the
    default is 0) and in arrival order within one priority. The control lane is read before any
    user message and is never full, so a stop request gets through a mailbox that is full.

    When the mailbox is full, ``overflow`` decides (see :class:`~triactor.Overflow`). Items that
    a policy drops are passed to ``on_drop(item, reason)``; the actor runtime turns them into
    dead letters.

    Every method is safe against KeyboardInterrupt (Trio's KI protection): a Ctrl-C never
    leaves a lane half-updated or a task registered for a wake-up it will not be there for.

    Args:
        capacity: the most user messages held at once; must be at least 1.
        overflow: the policy for a full mailbox.
        owner: the path of the actor that reads this mailbox, for error messages.
        on_drop: called with each item a policy drops and the policy that dropped it.
        describe: names an item's message type in error messages.

    Raises:
        ValueError: if ``capacity`` is less than 1.
        TypeError: if ``capacity`` is not an int or ``overflow`` is not an :class:`Overflow`.
    """

    __slots__ = (
        "_capacity",
        "_closed",
        "_consumer",
        "_control",
        "_default_lane",
        "_describe",
        "_dropped",
        "_high_water",
        "_lanes",
        "_on_drop",
        "_order",
        "_other",
        "_overflow",
        "_owner",
        "_putters",
        "fast_limit",
        "plain",
    )

    def __init__(
        self,
        capacity: int,
        overflow: Overflow,
        *,
        owner: str,
        on_drop: Callable[[object, Overflow], None],
        describe: Callable[[object], str] = lambda item: type(item).__name__,
    ) -> None:
        if not isinstance(capacity, int) or isinstance(capacity, bool):
            raise TypeError(f"mailbox capacity of actor {owner!r} must be an int, got {capacity!r}")
        if capacity < 1:
            raise ValueError(
                f"mailbox capacity of actor {owner!r} must be at least 1, got {capacity}; "
                "use a larger bound, or Overflow.DROP_OLDEST to keep only the newest messages"
            )
        if not isinstance(overflow, Overflow):
            raise TypeError(
                f"overflow of actor {owner!r} must be a triactor.Overflow, got {overflow!r}"
            )
        self._capacity = capacity
        self._overflow = overflow
        self._owner = owner
        self._on_drop = on_drop
        self._describe = describe
        self._default_lane: deque[object] = deque()
        # Lanes by priority, made when a priority other than 0 is first used (most mailboxes
        # never see one, and an actor should cost little memory). ``_order`` then lists the
        # priorities present, most urgent first; the default lane is always among them.
        self._lanes: dict[int, deque[object]] | None = None
        self._order: list[int] | None = None
        self._control: deque[object] | None = None
        # Items in lanes other than the default (the default lane's deque counts its own).
        self._other = 0
        self._high_water = 0
        self._dropped = 0
        self._closed = False
        self._consumer: Task | None = None
        # Blocked senders in arrival order, with the item and priority each is waiting to put;
        # made when a sender first has to wait.
        self._putters: OrderedDict[Task, tuple[object, int]] | None = None
        #: True while the default lane is all there is: no control items, no other priority,
        #: no blocked sender. The consumer may then take the next item with
        #: ``default_lane.popleft()`` itself (when the lane is not empty) instead of calling
        #: :meth:`pop_nowait`: the same item, without a call per message.
        self.plain = True
        #: A sender may append a priority-0 item to ``default_lane`` itself, instead of calling
        #: :meth:`put_nowait`, while ``len(default_lane) < fast_limit``: the lane is plain, the
        #: mailbox open, its consumer not parked, and the new depth no new high water, so that
        #: the append is all ``put_nowait`` would do. 0 when any of that does not hold.
        self.fast_limit = 0

    def _refresh(self) -> None:
        plain = self.plain = not self._control and self._order is None and not self._putters
        self.fast_limit = (
            self._high_water if plain and not self._closed and self._consumer is None else 0
        )

    # -- introspection --------------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        """The most user messages the mailbox holds at once."""
        return self._capacity

    @property
    def overflow(self) -> Overflow:
        """The policy applied when the mailbox is full."""
        return self._overflow

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called: new items are refused."""
        return self._closed

    @property
    def consumer_waiting(self) -> bool:
        """True while the consumer is parked in :meth:`wait` (the mailbox was empty)."""
        return self._consumer is not None

    @property
    def backlog(self) -> int:
        """User messages queued plus senders blocked by ``Overflow.BLOCK`` waiting for room."""
        size = len(self)
        return size + len(self._putters) if self._putters else size

    @property
    def default_lane(self) -> deque[object]:
        """The deque of priority-0 user messages, oldest first (the same one for life); see
        :attr:`plain` for the one thing its consumer may do with it."""
        return self._default_lane

    def __len__(self) -> int:
        return len(self._default_lane) + self._other

    def statistics(self) -> MailboxStatistics:
        """Return a :class:`MailboxStatistics` snapshot of this mailbox."""
        return MailboxStatistics(
            depth=len(self),
            capacity=self._capacity,
            high_water=self._high_water,
            control_depth=len(self._control) if self._control else 0,
            senders_waiting=len(self._putters) if self._putters else 0,
            dropped=self._dropped,
            closed=self._closed,
        )

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"<Mailbox of {self._owner} {len(self)}/{self._capacity} {state}, "
            f"{len(self._putters) if self._putters else 0} senders waiting>"
        )

    # -- writing --------------------------------------------------------------------------------

    def _append(self, item: object, priority: int) -> None:
        if priority == 0:
            self._default_lane.append(item)
        else:
            if self._lanes is None or self._order is None:
                self._lanes = {0: self._default_lane}
                self._order = [0]
                self.plain = False
                self.fast_limit = 0
            lane = self._lanes.get(priority)
            if lane is None:
                lane = self._lanes[priority] = deque()
                self._order.append(priority)
                self._order.sort(reverse=True)
            lane.append(item)
            self._other += 1
        size = len(self._default_lane) + self._other
        if size > self._high_water:
            self._high_water = size
            self._refresh()
        consumer = self._consumer
        if consumer is not None:
            self._consumer = None
            reschedule(consumer)
            self._refresh()

    def _drop(self, item: object, reason: Overflow) -> None:
        self._dropped += 1
        self._on_drop(item, reason)

    def _overflowing(self, item: object, priority: int) -> bool:
        """Apply a non-blocking policy to a full mailbox. Returns whether ``item`` was queued."""
        overflow = self._overflow
        if overflow is Overflow.DROP_OLDEST:
            self._drop(self._pop_oldest_least_urgent(), overflow)
            self._append(item, priority)
            return True
        if overflow is Overflow.DROP_NEWEST:
            self._drop(item, overflow)
            return False
        if overflow is Overflow.FAIL:
            raise MailboxFull(
                f"mailbox of actor {self._owner!r} is full ({self._capacity} messages, "
                f"Overflow.FAIL); {self._describe(item)} was not sent. Slow the "
                "sender down, raise mailbox_capacity, or use Overflow.BLOCK for backpressure"
            )
        return False  # BLOCK: the caller decides whether to wait

    def _pop_lane(self, most_urgent: bool) -> object:
        """Pop from the most (or least) urgent non-empty lane; the mailbox must not be empty."""
        lanes, order = self._lanes, self._order
        if lanes is None or order is None:
            return self._default_lane.popleft()
        priority = next(p for p in (order if most_urgent else reversed(order)) if lanes[p])
        lane = lanes[priority]
        item = lane.popleft()
        if priority != 0:
            self._other -= 1
            if not lane:
                # Lanes other than the default exist only while they hold something; with
                # the default lane alone left, the mailbox is back to one plain lane.
                del lanes[priority]
                order.remove(priority)
                if len(order) == 1:
                    self._lanes = self._order = None
                    self._refresh()
        return item

    def _pop_oldest_least_urgent(self) -> object:
        return self._pop_lane(most_urgent=False)

    def check_priority(self, priority: object, item: object) -> int:
        """Return ``priority`` as an int, or refuse it: nothing is changed by a refused send.

        Raises:
            TypeError: if ``priority`` is not an int (a bool is not one either).
        """
        if isinstance(priority, int) and not isinstance(priority, bool):
            return int(priority)
        raise TypeError(
            f"priority of {self._describe(item)} for actor {self._owner!r} must be an int "
            f"(larger is more urgent, default 0), got a {type(priority).__qualname__}; "
            "the message was not sent"
        )

    @enable_ki_protection
    def put_nowait(self, item: object, priority: int = 0) -> bool:
        """Queue ``item`` without waiting. Returns whether it was queued.

        Under ``Overflow.BLOCK`` a full mailbox returns False and the caller keeps the item;
        ``DROP_NEWEST`` drops the item (through ``on_drop``) and returns False; ``DROP_OLDEST``
        makes room and returns True. A closed mailbox returns False and drops nothing.

        Raises:
            MailboxFull: if the mailbox is full and its policy is ``Overflow.FAIL``.
            TypeError: if ``priority`` is not an int (nothing is queued or dropped).
        """
        if priority.__class__ is not int:
            priority = self.check_priority(priority, item)
        if self._closed:
            return False
        lane = self._default_lane
        size = len(lane) + self._other
        if size < self._capacity and not self._putters:
            if priority:
                self._append(item, priority)
                return True
            # The common case, _append inlined: the default lane.
            lane.append(item)
            size += 1
            if size > self._high_water:
                self._high_water = size
                self._refresh()
            consumer = self._consumer
            if consumer is not None:
                self._consumer = None
                reschedule(consumer)
                # _refresh, inlined: the mailbox is open and its consumer no longer parked.
                self.fast_limit = self._high_water if self.plain else 0
            return True
        return self._overflowing(item, priority)

    @enable_ki_protection
    async def put(self, item: object, priority: int = 0) -> bool:
        """Queue ``item``, waiting for room if the mailbox is full and its policy is ``BLOCK``.

        Returns True if the item was queued, False if the mailbox is (or became, while waiting)
        closed or ``DROP_NEWEST`` dropped the item. This is a cancellation point. For speed it is
        a schedule point only when it has to wait: a sender filling a mailbox runs on until the
        mailbox is full, and the consumer then takes the queued messages as a batch.

        Raises:
            MailboxFull: if the mailbox is full and its policy is ``Overflow.FAIL``.
            TypeError: if ``priority`` is not an int (nothing is queued or dropped).
        """
        if priority.__class__ is not int:
            priority = self.check_priority(priority, item)
        await checkpoint_if_cancelled()
        if self._closed:
            return False
        if len(self) < self._capacity and not self._putters:
            self._append(item, priority)
            return True
        if self._overflow is not Overflow.BLOCK:
            return self._overflowing(item, priority)
        return await self.wait_to_put(item, priority)

    @enable_ki_protection
    async def put_waiting(self, item: object, priority: int = 0) -> bool:
        """Queue ``item``, waiting for room whatever the overflow policy. Returns whether queued.

        For a feeder that must never drop what it took (a transport reading a stream: it reads
        only what fits, and the policy applied at the remote sender). False if closed.

        Raises:
            TypeError: if ``priority`` is not an int (nothing is queued).
        """
        if priority.__class__ is not int:
            priority = self.check_priority(priority, item)
        await checkpoint_if_cancelled()
        if self._closed:
            return False
        if len(self) < self._capacity and not self._putters:
            self._append(item, priority)
            return True
        return await self.wait_to_put(item, priority)

    @enable_ki_protection
    async def wait_to_put(self, item: object, priority: int = 0) -> bool:
        """Wait for room to queue ``item`` (the BLOCK policy's wait). Returns whether queued.

        For callers that already tried :meth:`put_nowait` after a cancellation check: this is
        the slow half of :meth:`put`, and ``priority`` is not checked again. Waiting senders
        are admitted in arrival order.
        """
        task = current_task()
        putters = self._putters
        if putters is None:
            putters = self._putters = OrderedDict()
        putters[task] = (item, priority)
        self.plain = False
        self.fast_limit = 0

        def abort(_: RaiseCancelT) -> Abort:
            del putters[task]
            self._refresh()
            return Abort.SUCCEEDED

        queued: bool = await wait_task_rescheduled(abort)
        return queued

    @enable_ki_protection
    def put_control(self, item: object) -> None:
        """Queue a system message ahead of every user message. Never blocks, never drops."""
        if self._control is None:
            self._control = deque()
        self._control.append(item)
        consumer = self._consumer
        if consumer is not None:
            self._consumer = None
            reschedule(consumer)
        self._refresh()

    @enable_ki_protection
    def discard_control(self, kind: type) -> None:
        """Remove every queued control item of class ``kind``."""
        if self._control:
            self._control = deque(item for item in self._control if item.__class__ is not kind)
            self._refresh()

    # -- reading --------------------------------------------------------------------------------

    @enable_ki_protection
    def pop_nowait(self) -> object:
        """Take the next item: control lane first, then the most urgent user message.

        Returns :data:`EMPTY` if nothing is queued.
        """
        control = self._control
        if control:
            item = control.popleft()
            if not control:
                self._refresh()
            return item
        if self._order is None:
            lane = self._default_lane
            if not lane:
                return EMPTY
            item = lane.popleft()
        else:  # another lane holds something: the mailbox is not empty
            item = self._pop_lane(most_urgent=True)
        putters = self._putters
        if putters:
            # Hand the freed place straight to the longest-waiting sender, so no newcomer can
            # take it first.
            task, (waiting_item, priority) = putters.popitem(last=False)
            self._append(waiting_item, priority)
            reschedule(task, Value(True))
            if not putters:
                self._refresh()
        return item

    @enable_ki_protection
    async def wait(self) -> None:
        """Wait until an item is queued (returns at once if one is). A checkpoint.

        Only one task may wait at a time: the mailbox has one consumer.

        Raises:
            RuntimeError: if another task is already waiting on this mailbox.
        """
        if self._control or self._default_lane or self._other:
            await trio.lowlevel.checkpoint()
            return
        if self._consumer is not None:
            raise RuntimeError(f"mailbox of {self._owner!r} already has a waiting consumer")
        task = current_task()
        self._consumer = task
        self.fast_limit = 0

        def abort(_: RaiseCancelT) -> Abort:
            self._consumer = None
            self._refresh()
            return Abort.SUCCEEDED

        await wait_task_rescheduled(abort)

    # -- closing --------------------------------------------------------------------------------

    @enable_ki_protection
    def close(self) -> None:
        """Refuse new items from now on; queued items stay until :meth:`drain` takes them.

        Blocked senders are woken and told their item was not queued (``put`` returns False).
        Control items are still accepted. Closing twice does nothing more.
        """
        self._closed = True
        while self._putters:
            task, _ = self._putters.popitem(last=False)
            reschedule(task, Value(False))
        self._refresh()

    @enable_ki_protection
    def drain(self) -> list[object]:
        """Remove and return every queued user item, most urgent first, oldest first within."""
        remaining: list[object] = []
        if self._lanes is None or self._order is None:
            remaining.extend(self._default_lane)
        else:
            for priority in self._order:
                remaining.extend(self._lanes[priority])
        self._default_lane.clear()
        self._lanes = self._order = None
        self._other = 0
        while self._putters:
            # Room just appeared: admit the blocked senders, whose items are now queued too.
            task, (item, _) = self._putters.popitem(last=False)
            remaining.append(item)
            reschedule(task, Value(True))
        self._refresh()
        return remaining
