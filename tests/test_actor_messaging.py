"""tell, ask and stop through refs: scenarios 17 (control lane), 18 (priorities), 19 (ask edge
cases), 20 (unknown message), and cancellation of senders."""

import pytest
import trio
from messages import Boom, Hold, Item, Kaboom, Ping, Recorder, StopSelf, Unhandled
from trio.testing import MockClock, wait_all_tasks_blocked

import triactor
from triactor import ActorStopped, DeadLetterReason, NoHandler, open_actor_system


def letters(system: triactor.ActorSystem) -> list[tuple[str, object, DeadLetterReason]]:
    return [(d.target, d.message, d.reason) for d in system.dead_letters]


async def spawn_held(
    system: triactor.ActorSystem, **options: object
) -> tuple[triactor.ActorRef, list[int], trio.Event]:
    """A Recorder busy with a Hold message until the returned gate is set."""
    seen: list[int] = []
    gate = trio.Event()
    ref = await system.spawn(Recorder, seen, gate, **options)
    await ref.tell(Hold())
    await wait_all_tasks_blocked()
    assert ref.statistics().current_message_type == "Hold"
    return ref, seen, gate


async def test_tell_then_ask_round_trip(system: triactor.ActorSystem) -> None:
    seen: list[int] = []
    ref = await system.spawn(Recorder, seen)
    for value in range(5):
        await ref.tell(Item(value))
    assert await ref.ask(Item(5)) == 5
    assert seen == [0, 1, 2, 3, 4, 5]
    assert await ref.ask(Ping()) == "pong"
    assert ref.statistics().processed == 7


# -- scenario 17: the control lane --------------------------------------------------------------


async def test_stop_request_overtakes_a_full_mailbox(
    system: triactor.ActorSystem, autojump_clock: MockClock
) -> None:
    ref, seen, gate = await spawn_held(system, mailbox_capacity=2)
    results: dict[str, object] = {}

    async def ask_queued() -> None:
        with pytest.raises(ActorStopped, match=rf"'{ref.path}'.*Item") as info:
            await ref.ask(Item(2))
        results["ask"] = info.value

    async def blocked_tell() -> None:
        await ref.tell(Item(3))
        results["blocked tell returned"] = True

    async def stopper() -> None:
        await ref.stop()
        results["stopped"] = ref.is_alive

    async with trio.open_nursery() as nursery:
        await ref.tell(Item(1))
        nursery.start_soon(ask_queued)
        await wait_all_tasks_blocked()
        nursery.start_soon(blocked_tell)  # the mailbox is full: this sender waits
        await wait_all_tasks_blocked()
        assert ref.statistics().mailbox.senders_waiting == 1
        nursery.start_soon(stopper)
        await wait_all_tasks_blocked()
        assert ref.statistics().mailbox.control_depth == 1
        assert "stopped" not in results  # the current message finishes first
        gate.set()
    assert seen == []  # the stop went ahead of every queued message
    assert isinstance(results.pop("ask"), ActorStopped)
    assert results == {"blocked tell returned": True, "stopped": False}
    assert sorted(letters(system), key=lambda letter: letter[1].value) == [  # type: ignore[attr-defined]
        (ref.path, Item(1), DeadLetterReason.ACTOR_STOPPED),
        (ref.path, Item(2), DeadLetterReason.ACTOR_STOPPED),
        (ref.path, Item(3), DeadLetterReason.ACTOR_STOPPED),
    ]
    assert system.dead_letters.count == 3


async def test_stop_lets_the_current_message_finish_and_its_asker_get_the_reply(
    system: triactor.ActorSystem, autojump_clock: MockClock
) -> None:
    seen: list[int] = []
    gate = trio.Event()
    ref = await system.spawn(Recorder, seen, gate)
    replies: list[object] = []

    async def asker() -> None:
        replies.append(await ref.ask(Hold()))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(asker)
        await wait_all_tasks_blocked()
        nursery.start_soon(ref.stop)
        await wait_all_tasks_blocked()
        assert ref.is_alive
        gate.set()
    assert replies == ["released"]
    assert not ref.is_alive
    assert system.dead_letters.count == 0


async def test_stop_twice_and_stop_after_stopped(
    system: triactor.ActorSystem, autojump_clock: MockClock
) -> None:
    ref = await system.spawn(Recorder)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ref.stop)
        nursery.start_soon(ref.stop)
    assert not ref.is_alive
    with trio.fail_after(1):
        await ref.stop()


async def test_tell_to_a_stopped_actor_is_dead_lettered_and_logged(
    system: triactor.ActorSystem, log_records: list[dict[str, object]]
) -> None:
    ref = await system.spawn(Recorder)
    await ref.stop()
    await ref.tell(Item(1))
    assert letters(system) == [(ref.path, Item(1), DeadLetterReason.ACTOR_STOPPED)]
    warnings = [r for r in log_records if r["level"].name == "WARNING"]  # type: ignore[attr-defined]
    assert len(warnings) == 1
    assert "Item" in str(warnings[0]["message"])
    assert warnings[0]["extra"] == {"actor": ref.path}


# -- scenario 18: priorities --------------------------------------------------------------------


async def test_higher_priority_first_equal_priorities_fifo(
    system: triactor.ActorSystem, autojump_clock: MockClock
) -> None:
    ref, seen, gate = await spawn_held(system)
    for value, priority in [(1, 0), (2, 5), (3, 0), (4, 5), (5, -1), (6, 9), (7, 0)]:
        await ref.tell(Item(value), priority=priority)
    gate.set()
    assert await ref.ask(Item(8), priority=-5) == 8
    assert seen == [6, 2, 4, 1, 3, 7, 5, 8]


async def test_ask_priority_overtakes_queued_tells(
    system: triactor.ActorSystem, autojump_clock: MockClock
) -> None:
    ref, seen, gate = await spawn_held(system)
    for value in (1, 2, 3):
        await ref.tell(Item(value))
    async with trio.open_nursery() as nursery:

        async def urgent() -> None:
            assert await ref.ask(Item(99), priority=1) == 99

        nursery.start_soon(urgent)
        await wait_all_tasks_blocked()
        gate.set()
    await ref.ask(Ping())
    assert seen == [99, 1, 2, 3]


# -- scenario 19: ask edge cases ----------------------------------------------------------------


async def test_ask_timeout_names_target_type_and_time_and_reply_goes_late(
    system: triactor.ActorSystem, autojump_clock: MockClock
) -> None:
    gate = trio.Event()
    ref = await system.spawn(Recorder, gate=gate, name="slow")
    start = trio.current_time()
    with pytest.raises(trio.TooSlowError) as info:
        await ref.ask(Hold(), timeout=2.5)
    assert trio.current_time() - start == pytest.approx(2.5)
    text = str(info.value)
    assert "'/slow'" in text
    assert "Hold" in text
    assert "2.5 s" in text
    assert system.dead_letters.count == 0
    gate.set()
    assert await ref.ask(Ping()) == "pong"  # the actor is fine; the reply above went late
    [late] = list(system.dead_letters)
    assert (late.target, late.message, late.reason) == (
        "/slow",
        "released",
        DeadLetterReason.LATE_REPLY,
    )
    assert "Hold" in late.detail
    assert system.dead_letters.count_by_reason() == {DeadLetterReason.LATE_REPLY: 1}


async def test_ask_honors_the_callers_cancel_scope(
    system: triactor.ActorSystem, autojump_clock: MockClock
) -> None:
    gate = trio.Event()
    ref = await system.spawn(Recorder, gate=gate)
    with trio.move_on_after(1) as scope:
        await ref.ask(Hold())
    assert scope.cancelled_caught
    assert trio.current_time() == pytest.approx(1)
    gate.set()
    await ref.ask(Ping())
    assert letters(system) == [(ref.path, "released", DeadLetterReason.LATE_REPLY)]


async def test_ask_with_timeout_returns_a_timely_reply(
    system: triactor.ActorSystem, autojump_clock: MockClock
) -> None:
    ref = await system.spawn(Recorder)
    assert await ref.ask(Item(3), timeout=1) == 3
    assert await ref.ask(Item(4), timeout=0.001) == 4
    assert system.dead_letters.count == 0


async def test_ask_to_a_stopped_actor_fails_at_once(
    system: triactor.ActorSystem, autojump_clock: MockClock
) -> None:
    ref = await system.spawn(Recorder, name="gone")
    await ref.stop()
    start = trio.current_time()
    with trio.fail_after(1), pytest.raises(ActorStopped, match=r"'/gone'.*Ping"):
        await ref.ask(Ping())
    assert trio.current_time() == start
    assert system.dead_letters.count == 0  # the asker got the error: nothing was lost
    assert isinstance(ActorStopped("x"), triactor.ActorError)


async def test_handler_error_reaches_the_asker_then_crashes_the_system(
    autojump_clock: MockClock, log_records: list[dict[str, object]]
) -> None:
    with pytest.raises(Kaboom, match="bad input") as outer:
        async with open_actor_system(check_messages=True) as system:
            ref = await system.spawn(Recorder, name="crashy")
            with pytest.raises(Kaboom, match="bad input") as inner:
                await ref.ask(Boom("bad input"))
            notes = "\n".join(getattr(inner.value, "__notes__", []))
            assert "'/crashy'" in notes
            assert "Boom" in notes
            await trio.sleep_forever()  # the crash cancels the block
    assert type(outer.value) is Kaboom
    assert outer.value is inner.value
    assert not ref.is_alive
    assert letters(system) == [("/crashy", Boom("bad input"), DeadLetterReason.CRASHED)]
    errors = [r for r in log_records if r["level"].name == "ERROR"]  # type: ignore[attr-defined]
    assert len(errors) == 1
    assert "/crashy" in str(errors[0]["message"])
    assert errors[0]["exception"] is not None


async def test_uncaught_handler_error_in_the_block_surfaces_once_and_bare(
    autojump_clock: MockClock,
) -> None:
    # The asker and the crashed actor raise the same exception object out of the system's
    # nursery: the user gets it once, not an exception group.
    with pytest.raises(Kaboom, match="twice") as info:
        async with open_actor_system(check_messages=True) as system:
            ref = await system.spawn(Recorder, name="crashy")
            await ref.ask(Boom("twice"))
    assert type(info.value) is Kaboom
    assert not ref.is_alive


async def test_told_message_that_crashes_an_unsupervised_actor_ends_the_system(
    autojump_clock: MockClock,
) -> None:
    with pytest.raises(Kaboom, match="told"):
        async with open_actor_system(check_messages=True) as system:
            ref = await system.spawn(Recorder)
            await ref.tell(Boom("told"))
            await trio.sleep_forever()
    assert system.statistics().actors == 0


# -- scenario 20: unknown message ---------------------------------------------------------------


async def test_unknown_message_ask_gets_no_handler_naming_everything(
    system: triactor.ActorSystem, autojump_clock: MockClock
) -> None:
    ref = await system.spawn(Recorder, name="rec")
    with pytest.raises(NoHandler) as info:
        await ref.ask(Unhandled())
    text = str(info.value)
    assert "'/rec'" in text
    assert "Unhandled" in text
    for handled in ("Item", "Ping", "Hold", "Boom", "StopSelf"):
        assert handled in text
    assert isinstance(info.value, TypeError)
    assert await ref.ask(Ping()) == "pong"
    assert ref.is_alive


async def test_unknown_message_tell_is_dead_lettered_and_logged(
    system: triactor.ActorSystem,
    autojump_clock: MockClock,
    log_records: list[dict[str, object]],
) -> None:
    ref = await system.spawn(Recorder, name="rec")
    await ref.tell(Unhandled())
    assert await ref.ask(Ping()) == "pong"  # still running, and the tell was handled before
    [letter] = list(system.dead_letters)
    assert (letter.target, letter.message, letter.reason) == (
        "/rec",
        Unhandled(),
        DeadLetterReason.NO_HANDLER,
    )
    assert "Item" in letter.detail
    logged = [
        r
        for r in log_records
        if "Unhandled" in str(r["message"]) and r["extra"].get("actor") == "/rec"  # type: ignore[attr-defined]
    ]
    assert len(logged) == 1
    assert logged[0]["level"].name == "WARNING"  # type: ignore[attr-defined]
    assert ref.is_alive


# -- stopping from inside -----------------------------------------------------------------------


async def test_actor_stop_from_inside_a_handler(
    system: triactor.ActorSystem, autojump_clock: MockClock
) -> None:
    seen: list[int] = []
    ref = await system.spawn(Recorder, seen)
    await ref.tell(Item(1))
    await ref.tell(StopSelf())
    await ref.tell(Item(2))
    notice = await system.watch(ref)
    assert notice.reason == "normal"
    assert seen == [1]
    assert letters(system) == [(ref.path, Item(2), DeadLetterReason.ACTOR_STOPPED)]


# -- cancellation of senders --------------------------------------------------------------------


async def test_cancelled_blocked_tell_enqueues_nothing(
    system: triactor.ActorSystem, autojump_clock: MockClock
) -> None:
    ref, seen, gate = await spawn_held(system, mailbox_capacity=1)
    await ref.tell(Item(1))
    with trio.move_on_after(3) as scope:
        await ref.tell(Item(2))
    assert scope.cancelled_caught
    assert ref.statistics().mailbox.senders_waiting == 0
    gate.set()
    await ref.ask(Ping())
    assert seen == [1]
    assert system.dead_letters.count == 0


async def test_cancelled_blocked_ask_enqueues_nothing(
    system: triactor.ActorSystem, autojump_clock: MockClock
) -> None:
    ref, seen, gate = await spawn_held(system, mailbox_capacity=1)
    await ref.tell(Item(1))
    with trio.move_on_after(3) as scope:
        await ref.ask(Item(2))
    assert scope.cancelled_caught
    gate.set()
    await ref.ask(Ping())
    assert seen == [1]
    assert system.dead_letters.count == 0


async def test_ask_cancelled_while_queued_expires_unhandled(
    system: triactor.ActorSystem, autojump_clock: MockClock
) -> None:
    ref, seen, gate = await spawn_held(system)
    with trio.move_on_after(1):
        await ref.ask(Item(7))
    gate.set()
    await ref.ask(Ping())
    assert seen == []  # nobody waits for it any more: it is not handled
    assert letters(system) == [(ref.path, Item(7), DeadLetterReason.EXPIRED)]


async def test_asker_whose_actor_stops_before_answering_gets_actor_stopped(
    system: triactor.ActorSystem, autojump_clock: MockClock
) -> None:
    ref, _, gate = await spawn_held(system)
    async with trio.open_nursery() as nursery:

        async def asker() -> None:
            with pytest.raises(ActorStopped):
                await ref.ask(Ping())

        nursery.start_soon(asker)
        await wait_all_tasks_blocked()
        nursery.start_soon(ref.stop)
        await wait_all_tasks_blocked()
        gate.set()
    assert letters(system) == [(ref.path, Ping(), DeadLetterReason.ACTOR_STOPPED)]


@pytest.mark.parametrize("how", ["evicted", "stopped"])
async def test_an_abandoned_ask_that_is_never_handled_makes_one_dead_letter(
    system: triactor.ActorSystem, autojump_clock: MockClock, how: str
) -> None:
    overflow = triactor.Overflow.DROP_OLDEST if how == "evicted" else triactor.Overflow.BLOCK
    ref, _, gate = await spawn_held(system, mailbox_capacity=1, overflow=overflow)
    with trio.move_on_after(1):
        await ref.ask(Item(1))
    if how == "evicted":
        await ref.tell(Item(2))
        expected = DeadLetterReason.DROPPED_OLDEST
    else:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ref.stop)
            await wait_all_tasks_blocked()
            gate.set()
        expected = DeadLetterReason.ACTOR_STOPPED
    assert letters(system) == [(ref.path, Item(1), expected)]
