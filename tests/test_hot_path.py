"""The fast paths of the message path keep every semantic of the slow ones.

``tell`` appends to a plain default lane itself and the serial loop pops it and calls an async
handler without a coroutine of its own (see ``Mailbox.plain``/``fast_limit`` and
``triactor._hot``). These tests put an actor in the state where the fast paths are taken and
check cancellation, priorities, the control lane, the FIFO hand-off to blocked senders, closed
mailboxes, errors and the snapshot clock there.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator

import attrs
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from messages import Boom, Hold, Item, Kaboom, Ping, Recorder
from trio.testing import wait_all_tasks_blocked

import triactor
from triactor import Actor, DeadLetterReason, Overflow, handler, open_actor_system
from triactor._hot import FAST_CANCEL, RUN_CONTEXT, duration_clock
from triactor.mailbox import EMPTY, Mailbox


class Resuming(Recorder):
    resume_on = (Kaboom,)


@pytest.fixture
async def system() -> AsyncIterator[triactor.ActorSystem]:
    """A system without ``check_messages``: with it, tell and ask take their slow paths."""
    async with open_actor_system() as system:
        yield system


def on_the_fast_path(ref: triactor.ActorRef) -> bool:
    """Whether ``ref``'s tell and ask take their fast path when called in this task."""
    return ref._runner is RUN_CONTEXT.runner  # type: ignore[attr-defined,no-any-return]


async def busy_with_backlog(
    system: triactor.ActorSystem, seen: list[int], **options: object
) -> tuple[triactor.ActorRef, trio.Event]:
    """A Recorder busy with ``Hold`` (not parked on its mailbox), Item(1) and Item(2) queued:
    the state where ``tell`` takes its fast path (checked)."""
    gate = trio.Event()
    ref = await system.spawn(Recorder, seen, gate, **options)  # type: ignore[arg-type]
    assert on_the_fast_path(ref)
    await ref.tell(Hold())
    await ref.tell(Item(1))
    await ref.tell(Item(2))
    await wait_all_tasks_blocked()
    mailbox = ref._mailbox  # type: ignore[attr-defined]
    assert len(mailbox) == 2
    assert len(mailbox.default_lane) < mailbox.fast_limit  # the fast path is open
    return ref, gate


def test_the_fast_cancellation_test_is_active_on_this_trio() -> None:
    # If a Trio upgrade changed the internals, the public call is used (correct but slower):
    # this makes that visible.
    assert FAST_CANCEL


async def test_fast_tell_still_raises_cancelled_and_queues_nothing(
    system: triactor.ActorSystem,
) -> None:
    seen: list[int] = []
    ref, gate = await busy_with_backlog(system, seen)
    with trio.CancelScope() as scope:
        scope.cancel()
        await ref.tell(Item(3))
        pytest.fail("tell in a cancelled scope returned")  # pragma: no cover
    assert scope.cancelled_caught
    assert len(ref._mailbox) == 2  # type: ignore[attr-defined]
    gate.set()
    assert await ref.ask(Item(4)) == 4
    assert seen == [1, 2, 4]


async def test_fast_tell_keeps_priorities(system: triactor.ActorSystem) -> None:
    seen: list[int] = []
    ref, gate = await busy_with_backlog(system, seen)
    await ref.tell(Item(3), priority=5)
    await ref.tell(Item(4))
    await ref.tell(Item(5), priority=-1)
    await ref.tell(Item(6))
    gate.set()
    assert await ref.ask(Item(7), priority=-2) == 7
    assert seen == [3, 1, 2, 4, 6, 5, 7]
    # With the other lanes empty again, the fast paths are open again.
    await ref.tell(Item(8))
    assert await ref.ask(Item(9)) == 9
    assert seen[-2:] == [8, 9]


async def test_stop_overtakes_messages_queued_on_the_fast_path(
    system: triactor.ActorSystem,
) -> None:
    seen: list[int] = []
    ref, gate = await busy_with_backlog(system, seen)
    for value in range(3, 6):
        await ref.tell(Item(value))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ref.stop)
        await wait_all_tasks_blocked()
        gate.set()
    assert seen == []  # the control lane came first: nothing queued was handled
    stopped = [d.message for d in system.dead_letters if d.reason is DeadLetterReason.ACTOR_STOPPED]
    assert stopped == [Item(1), Item(2), Item(3), Item(4), Item(5)]


async def test_blocked_senders_are_not_overtaken_by_fast_tells(
    system: triactor.ActorSystem,
) -> None:
    seen: list[int] = []
    ref, gate = await busy_with_backlog(system, seen, mailbox_capacity=3, overflow=Overflow.BLOCK)
    await ref.tell(Item(3))  # the fast path fills the last place
    async with trio.open_nursery() as nursery:
        for value in (4, 5):
            nursery.start_soon(ref.tell, Item(value))
            await wait_all_tasks_blocked()
        assert ref.statistics().mailbox.senders_waiting == 2
        gate.set()
        # Item(1) is taken and Item(4) admitted in its place; Item(5) still waits: a newcomer
        # must queue behind it, not slip into a free place.
        await ref.tell(Item(6))
    assert await ref.ask(Item(7)) == 7
    assert seen == [1, 2, 3, 4, 5, 6, 7]


async def test_an_idle_actor_is_woken_by_a_tell_after_a_backlog(
    system: triactor.ActorSystem,
) -> None:
    seen: list[int] = []
    ref, gate = await busy_with_backlog(system, seen)
    gate.set()
    await wait_all_tasks_blocked()  # handled everything: parked on its empty mailbox
    assert ref._mailbox.fast_limit == 0  # type: ignore[attr-defined]
    await ref.tell(Item(3))
    await wait_all_tasks_blocked()
    assert seen == [1, 2, 3]
    assert ref.statistics().mailbox.high_water == 3  # Hold, Item(1), Item(2)


async def test_a_stopped_actor_dead_letters_instead_of_queueing(
    system: triactor.ActorSystem,
) -> None:
    seen: list[int] = []
    ref, gate = await busy_with_backlog(system, seen)
    gate.set()
    await wait_all_tasks_blocked()
    await ref.stop()
    await ref.tell(Item(3))
    assert [d.message for d in system.dead_letters][-1] == Item(3)
    assert seen == [1, 2]


async def test_errors_on_the_fast_path_are_accounted() -> None:
    async with open_actor_system() as system:
        ref = await system.spawn(Resuming)
        await ref.tell(Boom("first"))
        await ref.tell(Item(1))
        assert await ref.ask(Item(2)) == 2
        stats = ref.statistics()
        assert (stats.failures, stats.processed) == (1, 2)
        [letter] = list(system.dead_letters)
        assert letter.reason is DeadLetterReason.HANDLER_ERROR
        assert letter.message == Boom("first")
    with pytest.raises(Kaboom, match="crash") as caught:
        async with open_actor_system() as system:
            ref = await system.spawn(Recorder)
            await ref.tell(Boom("crash"))
            await ref.tell(Item(1))
            await trio.sleep_forever()
    assert any("while handling Boom" in note for note in caught.value.__notes__)


async def test_snapshot_durations_on_the_mock_clock(autojump_clock: trio.abc.Clock) -> None:
    assert duration_clock() == autojump_clock.current_time
    async with open_actor_system() as system:
        seen: list[int] = []
        ref, gate = await busy_with_backlog(system, seen)
        await trio.sleep(3)
        gate.set()
        await wait_all_tasks_blocked()
        await ref.tell(Hold())  # the gate is set: handled at once
        ref2, gate2 = await busy_with_backlog(system, [])
        await trio.sleep(7)
        [snap] = [s for s in system.snapshot() if s.path == ref2.path]
        assert snap.current_message_type == "Hold"
        assert snap.busy_for == pytest.approx(7)
        gate2.set()


def test_snapshot_durations_on_trios_own_clock() -> None:
    async def main() -> None:
        assert duration_clock() is time.perf_counter
        async with open_actor_system() as system:
            ref, gate = await busy_with_backlog(system, [])
            start = trio.current_time()
            await trio.sleep(0.01)
            [snap] = [s for s in system.snapshot() if s.path == ref.path]
            assert 0.01 <= snap.busy_for <= trio.current_time() - start + 0.01
            gate.set()

    trio.run(main)


# -- the mailbox's fast-path contract, against the slow calls -----------------------------------

operations = st.lists(
    st.tuples(
        st.sampled_from(["put", "fast_put", "pop", "fast_pop", "control", "close"]),
        st.sampled_from([0, 0, 0, 1, -1]),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(capacity=st.integers(1, 4), overflow=st.sampled_from(list(Overflow)), ops=operations)
def test_direct_lane_access_is_what_the_calls_would_do(
    capacity: int, overflow: Overflow, ops: list[tuple[str, int]]
) -> None:
    """Whenever ``plain``/``fast_limit`` allow a direct popleft/append, the twin mailbox driven
    only through ``pop_nowait``/``put_nowait`` gives the same item, the same depth and high
    water; and the flags never allow it when a control item, another lane or closing forbids."""
    fast = Mailbox(capacity, overflow, owner="/fast", on_drop=lambda *_: None)
    slow = Mailbox(capacity, overflow, owner="/slow", on_drop=lambda *_: None)
    for serial, (op, priority) in enumerate(ops):
        lane = fast.default_lane
        if op == "fast_put" and priority == 0 and len(lane) < fast.fast_limit:
            lane.append(serial)
            assert slow.put_nowait(serial)
        elif op in ("put", "fast_put"):
            try:
                queued = slow.put_nowait(serial, priority)
            except triactor.MailboxFull:
                with pytest.raises(triactor.MailboxFull):
                    fast.put_nowait(serial, priority)
            else:
                assert fast.put_nowait(serial, priority) == queued
        elif op == "fast_pop" and fast.plain and lane:
            assert lane.popleft() == slow.pop_nowait()
        elif op in ("pop", "fast_pop"):
            assert fast.pop_nowait() == slow.pop_nowait()
        elif op == "control":
            fast.put_control(("control", serial))
            slow.put_control(("control", serial))
        else:
            fast.close()
            slow.close()
        assert fast.statistics() == slow.statistics()
        stats = fast.statistics()
        if fast.plain:
            assert stats.control_depth == 0 and stats.senders_waiting == 0
            assert len(fast.default_lane) == stats.depth
        if fast.fast_limit:
            assert fast.plain and not fast.closed
            assert fast.fast_limit == stats.high_water <= capacity
    rest = slow.drain()
    assert fast.drain() == rest
    while (item := slow.pop_nowait()) is not EMPTY:
        assert fast.pop_nowait() == item


async def test_tell_from_another_threads_trio_run_is_refused(system: triactor.ActorSystem) -> None:
    # The fast path tells the system's run from the running task's; another thread's run is
    # refused as the slow path refuses it, and nothing is queued.
    ref = await system.spawn(Recorder)
    errors: list[BaseException] = []

    def other_thread() -> None:
        try:
            trio.run(ref.tell, Item(1))
        except RuntimeError as exc:
            errors.append(exc)

    await trio.to_thread.run_sync(other_thread)
    [error] = errors
    assert "thread" in str(error)
    assert ref.statistics().mailbox.depth == 0
    assert ref.statistics().processed == 0


# -- ask's fast path -------------------------------------------------------------------------


async def test_fast_ask_in_a_cancelled_scope_queues_nothing(system: triactor.ActorSystem) -> None:
    seen: list[int] = []
    ref = await system.spawn(Recorder, seen)
    assert on_the_fast_path(ref)
    with trio.CancelScope() as scope:
        scope.cancel()
        await ref.ask(Item(1))
        pytest.fail("ask in a cancelled scope returned")  # pragma: no cover
    assert scope.cancelled_caught
    await wait_all_tasks_blocked()
    assert seen == []
    assert ref.statistics().mailbox.high_water == 0


async def test_fast_ask_abandoned_while_queued_is_expired_not_handled(
    system: triactor.ActorSystem,
) -> None:
    seen: list[int] = []
    ref, gate = await busy_with_backlog(system, seen)
    with trio.move_on_after(0.01) as scope:
        await ref.ask(Item(3))
    assert scope.cancelled_caught
    gate.set()
    assert await ref.ask(Item(4)) == 4
    assert seen == [1, 2, 4]
    [expired] = [d for d in system.dead_letters if d.reason is DeadLetterReason.EXPIRED]
    assert expired.message == Item(3)


async def test_fast_ask_abandoned_while_handled_replies_late(
    system: triactor.ActorSystem,
) -> None:
    ref = await system.spawn(Recorder)
    with trio.move_on_after(0.01):
        await ref.ask(Hold())
    ref_cell = ref._cell  # type: ignore[attr-defined]
    ref_cell.instance.gate.set()
    assert await ref.ask(Ping()) == "pong"
    [late] = [d for d in system.dead_letters if d.reason is DeadLetterReason.LATE_REPLY]
    assert late.message == "released"  # the reply, to Hold


class Forwarder(Actor):
    """Answers an ``Item`` with what ``target`` (itself if None) answers to it."""

    def __init__(self, target: triactor.ActorRef | None) -> None:
        self.target = target

    @handler
    async def item(self, msg: Item) -> object:
        try:
            return await (self.target or self.ref).ask(msg)
        except triactor.AskCycleError as exc:
            return exc.cycle


async def test_fast_ask_from_an_actor_keeps_its_chain() -> None:
    # An actor asking (the chain path) and a plain task asking (the fast path) both get replies;
    # an actor asking itself through a chain is refused as a cycle.
    async with open_actor_system() as system:
        echo = await system.spawn(Recorder)
        asker = await system.spawn(Forwarder, echo)
        assert on_the_fast_path(asker)
        assert await asker.ask(Item(5)) == 5
        self_asker = await system.spawn(Forwarder, None, name="self")
        assert await self_asker.ask(Item(6)) == ("/self", "/self")


@attrs.frozen
class Junk:
    """A message cattrs cannot carry: check_messages refuses it."""

    handle: object = attrs.field(factory=object)


async def test_check_messages_still_checks_tell_and_ask() -> None:
    async with open_actor_system(check_messages=True) as system:
        ref = await system.spawn(Recorder)
        assert not on_the_fast_path(ref)  # the slow paths check messages
        with pytest.raises(TypeError):
            await ref.tell(Junk())
        with pytest.raises(TypeError):
            await ref.ask(Junk())
        assert await ref.ask(Item(1)) == 1


# -- the serial loop yields to others, however busy ----------------------------------------


class Spinner(Actor):
    """Handles ``Item`` without ever waiting; records each item's value."""

    mailbox_capacity = 10_000

    def __init__(self, seen: list[int]) -> None:
        self.seen = seen

    @handler
    async def item(self, msg: Item) -> None:
        self.seen.append(msg.value)


class StepSizes(trio.abc.Instrument):
    """Counts the items ``seen`` grew by in each task step of the task named ``name``."""

    def __init__(self, name: str, seen: list[int]) -> None:
        self.name = name
        self.seen = seen
        self.sizes: list[int] = []
        self._before = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task.name == self.name:
            self._before = len(self.seen)

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        if task.name == self.name:
            self.sizes.append(len(self.seen) - self._before)


async def step_sizes(messages: int) -> list[int]:
    """Messages a busy Spinner handles per task step, all of them queued before it runs."""
    seen: list[int] = []
    async with open_actor_system() as system:
        ref = await system.spawn(Spinner, seen, name="spinner")
        steps = StepSizes(ref.path, seen)
        trio.lowlevel.add_instrument(steps)
        for value in range(messages):
            await ref.tell(Item(value))  # no schedule point: all queued before it runs
        while len(seen) < messages:
            await trio.lowlevel.checkpoint()
        trio.lowlevel.remove_instrument(steps)
    assert seen == list(range(messages))
    return steps.sizes


async def test_a_busy_actor_yields_within_1024_messages(autojump_clock: trio.abc.Clock) -> None:
    # The mock clock stands still within a step: only the count bounds it.
    sizes = await step_sizes(5000)
    assert max(sizes) == 1024
    assert sum(sizes) == 5000


class TickingClock(trio.abc.Clock):
    """A clock that moves 0.1 ms each time it is read, and never sleeps for real."""

    def __init__(self) -> None:
        self.now = 0.0

    def start_clock(self) -> None:
        pass

    def current_time(self) -> float:
        self.now += 0.0001
        return self.now

    def deadline_to_sleep_time(self, deadline: float) -> float:
        return 0.0


def test_a_busy_actor_yields_once_its_step_ran_half_a_millisecond() -> None:
    # Each message takes 0.1 ms on this clock: at its first look, after 64 messages, the loop
    # finds 6.4 ms gone and yields: slow handlers yield as often as before the quantum.
    sizes = trio.run(step_sizes, 3000, clock=TickingClock())
    assert max(sizes) == 64
    assert sum(sizes) == 3000


async def test_an_idle_actor_shows_no_current_message(system: triactor.ActorSystem) -> None:
    seen: list[int] = []
    ref = await system.spawn(Recorder, seen)
    for value in range(200):  # past _BATCH: the loop also yields between them
        await ref.tell(Item(value))
    await wait_all_tasks_blocked()
    assert len(seen) == 200
    [snap] = [s for s in system.snapshot() if s.path == ref.path]
    assert snap.current_message_type is None
    assert ref._cell.current is None  # type: ignore[attr-defined]


# -- stopping an idle actor: its deadline waits until it has something to drain -----------------


async def test_an_idle_actor_stopped_gets_its_deadline_when_it_must_drain(
    autojump_clock: trio.abc.Clock,
) -> None:
    # The stop is asked while the actor is idle (so its deadline is deferred); a message that
    # does not finish arrives before the actor runs. The drain must still be cut at the
    # shutdown timeout.
    gate = trio.Event()
    async with open_actor_system() as system:
        ref = await system.spawn(Recorder, [], gate, shutdown_timeout=2)
        cell = ref._cell  # type: ignore[attr-defined]
        await wait_all_tasks_blocked()
        assert cell._stops_at_once()
        try:
            start = trio.current_time()
            stopped = cell.request_stop(drain=True, deadline=start + 2)  # as ref.stop() asks
            assert cell._scope.deadline == math.inf  # deferred
            await ref.tell(Hold())  # no schedule point: queued before the actor runs
            await wait_all_tasks_blocked()  # it took the stop, and drains: Hold waits
            assert cell._scope.deadline == start + 2
            await stopped.wait()
            assert trio.current_time() - start == pytest.approx(2)
            assert cell.last_exit is triactor.ExitReason.CANCELLED
        finally:
            gate.set()  # a failed test still ends


async def test_a_busy_actor_stopped_gets_its_deadline_at_once(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with open_actor_system() as system:
        ref = await system.spawn(Recorder, shutdown_timeout=3)
        await ref.tell(Hold())
        await wait_all_tasks_blocked()
        assert not ref._cell._stops_at_once()  # type: ignore[attr-defined]
        start = trio.current_time()
        with trio.fail_after(60):
            await ref.stop()
        assert trio.current_time() - start == pytest.approx(3)


async def test_ask_with_timeout_from_a_foreign_thread_is_refused_by_triactor(
    system: triactor.ActorSystem,
) -> None:
    ref = await system.spawn(Recorder)

    def other_thread() -> str:
        coro = ref.ask(Item(1), timeout=1)
        try:
            coro.send(None)
        except RuntimeError as exc:
            return str(exc)
        finally:
            coro.close()
        return "no error"  # pragma: no cover

    error = await trio.to_thread.run_sync(other_thread)
    assert "not its actor system's Trio thread" in error
    assert ref.statistics().mailbox.depth == 0
