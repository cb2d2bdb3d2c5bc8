"""The bounded mailbox on its own, and scenario 16 (overflow policies) through actors."""

import math

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from messages import Item, Recorder, Stepper
from trio.testing import wait_all_tasks_blocked

import triactor
from triactor import DeadLetterReason, MailboxFull, Overflow
from triactor.mailbox import EMPTY, Mailbox

# -- the Mailbox class --------------------------------------------------------------------------


def make_mailbox(
    capacity: int = 2, overflow: Overflow = Overflow.BLOCK
) -> tuple[Mailbox, list[tuple[object, Overflow]]]:
    dropped: list[tuple[object, Overflow]] = []
    mailbox = Mailbox(
        capacity, overflow, owner="/owner", on_drop=lambda item, why: dropped.append((item, why))
    )
    return mailbox, dropped


def pop_all(mailbox: Mailbox) -> list[object]:
    items = []
    while (item := mailbox.pop_nowait()) is not EMPTY:
        items.append(item)
    return items


@pytest.mark.parametrize(
    ("capacity", "error"),
    [(0, ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError), ("2", TypeError)],
)
def test_mailbox_rejects_bad_capacity(capacity: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="/owner"):
        Mailbox(capacity, Overflow.BLOCK, owner="/owner", on_drop=lambda item, why: None)  # type: ignore[arg-type]


def test_mailbox_rejects_bad_overflow() -> None:
    with pytest.raises(TypeError, match="/owner"):
        Mailbox(2, "block", owner="/owner", on_drop=lambda item, why: None)  # type: ignore[arg-type]


def test_priorities_then_fifo_and_control_lane_first() -> None:
    mailbox, _ = make_mailbox(capacity=10)
    for item, priority in [("a", 0), ("b", 5), ("c", -1), ("d", 5), ("e", 0), ("f", 9)]:
        assert mailbox.put_nowait(item, priority)
    mailbox.put_control("stop")
    stats = mailbox.statistics()
    assert (stats.depth, stats.control_depth, stats.high_water) == (6, 1, 6)
    assert pop_all(mailbox) == ["stop", "f", "b", "d", "a", "e", "c"]
    assert len(mailbox) == 0


def test_control_lane_ignores_capacity_and_closing() -> None:
    mailbox, dropped = make_mailbox(capacity=1, overflow=Overflow.FAIL)
    assert mailbox.put_nowait("user")
    mailbox.close()
    mailbox.put_control("c1")
    mailbox.put_control("c2")
    assert dropped == []
    assert pop_all(mailbox) == ["c1", "c2", "user"]


def test_fail_policy_names_owner_and_message_type() -> None:
    mailbox, dropped = make_mailbox(capacity=1, overflow=Overflow.FAIL)
    assert mailbox.put_nowait(Item(1))
    with pytest.raises(MailboxFull, match=r"'/owner'.*Item"):
        mailbox.put_nowait(Item(2))
    assert dropped == []
    assert mailbox.statistics().dropped == 0
    assert pop_all(mailbox) == [Item(1)]


def test_closed_mailbox_refuses_and_drain_keeps_priority_order() -> None:
    mailbox, dropped = make_mailbox(capacity=5, overflow=Overflow.DROP_NEWEST)
    for item, priority in [("low", -1), ("a", 0), ("hi", 3), ("b", 0)]:
        mailbox.put_nowait(item, priority)
    mailbox.close()
    assert mailbox.closed
    assert mailbox.statistics().closed
    assert not mailbox.put_nowait("late")
    assert dropped == []
    assert mailbox.drain() == ["hi", "a", "b", "low"]
    assert len(mailbox) == 0
    assert mailbox.pop_nowait() is EMPTY


async def test_blocked_senders_are_admitted_in_arrival_order() -> None:
    mailbox, _ = make_mailbox(capacity=1)
    assert await mailbox.put("first")
    returned: list[str] = []

    async def sender(item: str) -> None:
        assert await mailbox.put(item)
        returned.append(item)

    async with trio.open_nursery() as nursery:
        for item in ("b", "c", "d"):
            nursery.start_soon(sender, item)
            await wait_all_tasks_blocked()
        assert mailbox.statistics().senders_waiting == 3
        assert returned == []
        # A newcomer cannot barge past the waiting senders.
        assert not mailbox.put_nowait("barger")
        taken = []
        for expected_return in (["b"], ["b", "c"], ["b", "c", "d"]):
            taken.append(mailbox.pop_nowait())
            await wait_all_tasks_blocked()
            assert returned == expected_return
            assert len(mailbox) == 1
        taken.append(mailbox.pop_nowait())
    assert taken == ["first", "b", "c", "d"]
    assert mailbox.statistics().senders_waiting == 0


async def test_cancelled_blocked_put_enqueues_nothing() -> None:
    mailbox, dropped = make_mailbox(capacity=1)
    await mailbox.put("a")
    async with trio.open_nursery() as nursery:
        scope = trio.CancelScope()

        async def sender() -> None:
            with scope:
                await mailbox.put("b")
            assert scope.cancelled_caught

        nursery.start_soon(sender)
        await wait_all_tasks_blocked()
        assert mailbox.statistics().senders_waiting == 1
        scope.cancel()
    assert mailbox.statistics().senders_waiting == 0
    assert pop_all(mailbox) == ["a"]
    assert dropped == []


async def test_close_wakes_blocked_senders_with_false() -> None:
    mailbox, _ = make_mailbox(capacity=1)
    await mailbox.put("a")
    results: list[bool] = []

    async def sender() -> None:
        results.append(await mailbox.put("b"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sender)
        await wait_all_tasks_blocked()
        mailbox.close()
    assert results == [False]
    assert mailbox.drain() == ["a"]
    assert not await mailbox.put("c")


async def test_wait_wakes_the_consumer_and_allows_only_one() -> None:
    mailbox, _ = make_mailbox()
    woke: list[object] = []

    async def consumer() -> None:
        await mailbox.wait()
        woke.append(mailbox.pop_nowait())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)
        await wait_all_tasks_blocked()
        with pytest.raises(RuntimeError, match="/owner"):
            await mailbox.wait()
        assert woke == []
        mailbox.put_nowait("x")
    assert woke == ["x"]


# -- property test: order, bound and eviction ---------------------------------------------------

operations = st.lists(
    st.one_of(st.tuples(st.just("put"), st.integers(-2, 2)), st.just(("pop", 0))),
    max_size=60,
)


def stable_by_urgency(queued: list[tuple[int, int]]) -> list[tuple[int, int]]:
    return sorted(queued, key=lambda entry: -entry[1])


@settings(max_examples=300, deadline=None)
@given(capacity=st.integers(1, 5), overflow=st.sampled_from(list(Overflow)), ops=operations)
def test_mailbox_matches_model(
    capacity: int, overflow: Overflow, ops: list[tuple[str, int]]
) -> None:
    mailbox, dropped = make_mailbox(capacity, overflow)
    queued: list[tuple[int, int]] = []  # the model: (item, priority) in arrival order
    expected_drops = 0
    high_water = 0
    for serial, (op, priority) in enumerate(ops):
        if op == "pop":
            item = mailbox.pop_nowait()
            if not queued:
                assert item is EMPTY
            else:
                expected = stable_by_urgency(queued)[0]
                assert item == expected
                queued.remove(expected)
        else:
            entry = (serial, priority)
            before = list(dropped)
            if len(queued) < capacity:
                assert mailbox.put_nowait(entry, priority)
                queued.append(entry)
            elif overflow is Overflow.BLOCK:
                assert not mailbox.put_nowait(entry, priority)
            elif overflow is Overflow.FAIL:
                with pytest.raises(MailboxFull):
                    mailbox.put_nowait(entry, priority)
            elif overflow is Overflow.DROP_NEWEST:
                assert not mailbox.put_nowait(entry, priority)
                assert dropped[len(before) :] == [(entry, Overflow.DROP_NEWEST)]
                expected_drops += 1
            else:
                # DROP_OLDEST evicts the oldest message of the least urgent lane.
                least = min(p for _, p in queued)
                victim = next(e for e in queued if e[1] == least)
                assert mailbox.put_nowait(entry, priority)
                assert dropped[len(before) :] == [(victim, Overflow.DROP_OLDEST)]
                queued.remove(victim)
                queued.append(entry)
                expected_drops += 1
            if overflow not in (Overflow.DROP_NEWEST, Overflow.DROP_OLDEST):
                assert dropped == before
        high_water = max(high_water, len(queued))
        stats = mailbox.statistics()
        assert len(mailbox) == stats.depth == len(queued) <= capacity
        assert stats.high_water == high_water
        assert stats.dropped == len(dropped) == expected_drops
    assert mailbox.drain() == stable_by_urgency(queued)
    assert len(mailbox) == 0


# -- scenario 16: overflow through actors -------------------------------------------------------


async def spawn_stepper(
    system: triactor.ActorSystem, overflow: Overflow
) -> tuple[triactor.ActorRef, trio.MemorySendChannel[None], list[int]]:
    """A capacity-2 Stepper already busy with Item(0), so the next two items fill its mailbox."""
    steps_in, steps_out = trio.open_memory_channel[None](0)
    started: list[int] = []
    ref = await system.spawn(Stepper, steps_out, started, mailbox_capacity=2, overflow=overflow)
    await ref.tell(Item(0))
    await wait_all_tasks_blocked()
    assert started == [0]
    return ref, steps_in, started


async def release_all(steps: trio.MemorySendChannel[None], started: list[int], n: int) -> None:
    """Let ``n`` items finish (the clock is mocked: a missing item fails fast, never hangs)."""
    with trio.fail_after(60):
        for _ in range(n):
            await steps.send(None)
    await wait_all_tasks_blocked()


def letters(system: triactor.ActorSystem) -> list[tuple[str, object, DeadLetterReason]]:
    return [(d.target, d.message, d.reason) for d in system.dead_letters]


async def test_block_makes_the_third_sender_wait_until_one_is_consumed(
    system: triactor.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    ref, steps, started = await spawn_stepper(system, Overflow.BLOCK)
    await ref.tell(Item(1))
    await ref.tell(Item(2))
    admitted: list[int] = []

    async def sender(value: int) -> None:
        await ref.tell(Item(value))
        admitted.append(value)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sender, 3)
        await wait_all_tasks_blocked()
        nursery.start_soon(sender, 4)
        await wait_all_tasks_blocked()
        assert admitted == []
        assert ref.statistics().mailbox.senders_waiting == 2
        assert ref.statistics().mailbox.depth == 2
        assert not ref.try_tell(Item(99))  # no barging past the waiting senders
        await steps.send(None)  # Item(0) done: the actor takes Item(1), Item(3) gets its place
        await wait_all_tasks_blocked()
        assert started == [0, 1]
        assert admitted == [3]
        await steps.send(None)
        await wait_all_tasks_blocked()
        assert admitted == [3, 4]
    await release_all(steps, started, 3)
    assert started == [0, 1, 2, 3, 4]
    assert system.dead_letters.count == 0


async def test_drop_oldest_keeps_the_newest_two(
    system: triactor.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    ref, steps, started = await spawn_stepper(system, Overflow.DROP_OLDEST)
    for value in (1, 2, 3, 4):
        await ref.tell(Item(value))
    assert letters(system) == [
        (ref.path, Item(1), DeadLetterReason.DROPPED_OLDEST),
        (ref.path, Item(2), DeadLetterReason.DROPPED_OLDEST),
    ]
    assert ref.statistics().mailbox.dropped == 2
    await release_all(steps, started, 3)
    assert started == [0, 3, 4]
    assert system.dead_letters.count == 2


async def test_drop_newest_keeps_the_first_two(
    system: triactor.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    ref, steps, started = await spawn_stepper(system, Overflow.DROP_NEWEST)
    for value in (1, 2, 3, 4):
        await ref.tell(Item(value))
    assert letters(system) == [
        (ref.path, Item(3), DeadLetterReason.DROPPED_NEWEST),
        (ref.path, Item(4), DeadLetterReason.DROPPED_NEWEST),
    ]
    await release_all(steps, started, 3)
    assert started == [0, 1, 2]
    assert system.dead_letters.count == 2


async def test_fail_raises_mailbox_full_in_the_sender(
    system: triactor.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    ref, steps, started = await spawn_stepper(system, Overflow.FAIL)
    await ref.tell(Item(1))
    await ref.tell(Item(2))
    with pytest.raises(MailboxFull, match=rf"'{ref.path}'.*Item"):
        await ref.tell(Item(3))
    with pytest.raises(MailboxFull, match=rf"'{ref.path}'.*Item"):
        await ref.ask(Item(4))
    assert system.dead_letters.count == 0  # the sender kept the message: nothing was lost
    await release_all(steps, started, 3)
    assert started == [0, 1, 2]


@pytest.mark.parametrize(
    ("overflow", "queued", "reason", "kept"),
    [
        (Overflow.BLOCK, False, None, [0, 1, 2]),
        (Overflow.FAIL, False, None, [0, 1, 2]),
        (Overflow.DROP_NEWEST, False, DeadLetterReason.DROPPED_NEWEST, [0, 1, 2]),
        (Overflow.DROP_OLDEST, True, DeadLetterReason.DROPPED_OLDEST, [0, 2, 3]),
    ],
)
async def test_try_tell_on_a_full_mailbox(
    system: triactor.ActorSystem,
    autojump_clock: trio.testing.MockClock,
    overflow: Overflow,
    queued: bool,
    reason: DeadLetterReason | None,
    kept: list[int],
) -> None:
    ref, steps, started = await spawn_stepper(system, overflow)
    assert ref.try_tell(Item(1))
    assert ref.try_tell(Item(2))
    assert ref.try_tell(Item(3)) is queued
    if reason is None:
        assert system.dead_letters.count == 0
    else:
        dropped = Item(3) if reason is DeadLetterReason.DROPPED_NEWEST else Item(1)
        assert letters(system) == [(ref.path, dropped, reason)]
    await release_all(steps, started, 3)
    assert started == kept


async def test_try_tell_to_a_stopped_actor_dead_letters(
    system: triactor.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    ref = await system.spawn(Recorder)
    await ref.stop()
    assert not ref.try_tell(Item(1))
    assert letters(system) == [(ref.path, Item(1), DeadLetterReason.ACTOR_STOPPED)]


async def test_ask_dropped_by_drop_newest_gets_mailbox_full(
    system: triactor.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    ref, steps, started = await spawn_stepper(system, Overflow.DROP_NEWEST)
    await ref.tell(Item(1))
    await ref.tell(Item(2))
    with pytest.raises(MailboxFull, match=rf"'{ref.path}'.*DROP_NEWEST.*Item"):
        await ref.ask(Item(3))
    assert letters(system) == [(ref.path, Item(3), DeadLetterReason.DROPPED_NEWEST)]
    await release_all(steps, started, 3)
    assert started == [0, 1, 2]


async def test_ask_evicted_by_drop_oldest_gets_mailbox_full(
    system: triactor.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    ref, steps, started = await spawn_stepper(system, Overflow.DROP_OLDEST)
    outcome: list[BaseException] = []

    async def asker() -> None:
        with pytest.raises(MailboxFull, match=rf"'{ref.path}'.*DROP_OLDEST.*Item") as info:
            await ref.ask(Item(1))
        outcome.append(info.value)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(asker)
        await wait_all_tasks_blocked()
        await ref.tell(Item(2))
        await ref.tell(Item(3))  # evicts the queued request for Item(1)
    assert len(outcome) == 1
    assert letters(system) == [(ref.path, Item(1), DeadLetterReason.DROPPED_OLDEST)]
    await release_all(steps, started, 3)
    assert started == [0, 2, 3]


async def test_statistics_track_high_water_and_drops(
    system: triactor.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    ref, steps, started = await spawn_stepper(system, Overflow.DROP_NEWEST)
    for value in (1, 2, 3):
        ref.try_tell(Item(value))
    stats = ref.statistics().mailbox
    assert (stats.depth, stats.capacity, stats.high_water, stats.dropped) == (2, 2, 2, 1)
    assert stats.senders_waiting == 0
    assert not stats.closed
    await release_all(steps, started, 3)
    assert ref.statistics().mailbox.depth == 0
    assert ref.statistics().mailbox.high_water == 2


def test_unbounded_capacity_is_refused() -> None:
    with pytest.raises(TypeError):
        Mailbox(math.inf, Overflow.BLOCK, owner="/o", on_drop=lambda item, why: None)  # type: ignore[arg-type]
