"""The fast paths of the message path keep every semantic of the slow ones.

``tell`` appends to a plain default lane itself and the serial loop pops it and calls an async
handler without a coroutine of its own (see ``Mailbox.plain``/``fast_limit`` and
``triactor._hot``). These tests put an actor in the state where the fast paths are taken and
check cancellation, priorities, the control lane, the FIFO hand-off to blocked senders, closed
mailboxes, errors and the snapshot clock there.
"""

from __future__ import annotations

import time

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from messages import Boom, Hold, Item, Kaboom, Recorder
from trio.testing import wait_all_tasks_blocked

import triactor
from triactor import DeadLetterReason, Overflow, open_actor_system
from triactor._hot import FAST_CANCEL, duration_clock
from triactor.mailbox import EMPTY, Mailbox


class Resuming(Recorder):
    resume_on = (Kaboom,)


async def busy_with_backlog(
    system: triactor.ActorSystem, seen: list[int], **options: object
) -> tuple[triactor.ActorRef, trio.Event]:
    """A Recorder busy with ``Hold`` (not parked on its mailbox), Item(1) and Item(2) queued:
    the state where ``tell`` takes its fast path (checked)."""
    gate = trio.Event()
    ref = await system.spawn(Recorder, seen, gate, **options)  # type: ignore[arg-type]
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
