"""The actor system: spawning, lifecycle hooks, lookup, watch, dead letters, shutdown order,
and the errors bad input gets at the boundary."""

from collections.abc import Callable
from typing import Any

import attrs
import pytest
import trio
from messages import Boom, Hold, Item, Kaboom, Ping, Recorder
from trio.testing import MockClock, wait_all_tasks_blocked

import triactor
from triactor import (
    Actor,
    ActorNotFound,
    ActorStopped,
    DeadLetterReason,
    Overflow,
    Terminated,
    handler,
    open_actor_system,
)

Events = list[tuple[str, str]]


class Tracker(Actor):
    """Records its lifecycle in a shared list as (name, what)."""

    def __init__(
        self,
        events: Events,
        *,
        gate: trio.Event | None = None,
        start_delay: float = 0,
        on_stop_mode: str = "ok",
    ) -> None:
        self.events = events
        self.gate = gate
        self.start_delay = start_delay
        self.on_stop_mode = on_stop_mode

    async def on_start(self) -> None:
        await self.ref.tell(Item(0))  # queued during on_start: handled only after it returns
        await trio.sleep(self.start_delay)
        self.events.append((self.name, "started"))

    async def on_stop(self) -> None:
        self.events.append((self.name, "on_stop"))
        if self.on_stop_mode == "hang":
            try:
                await trio.sleep_forever()
            finally:
                self.events.append((self.name, "on_stop cut off"))
        elif self.on_stop_mode == "raise":
            raise RuntimeError("on_stop failed")

    @handler
    async def item(self, msg: Item) -> int:
        self.events.append((self.name, f"item {msg.value}"))
        return msg.value

    @handler
    async def hold(self, msg: Hold) -> None:
        assert self.gate is not None
        self.events.append((self.name, "holding"))
        await self.gate.wait()

    @handler
    async def boom(self, msg: Boom) -> None:
        raise Kaboom(msg.text)


class FailingStart(Actor):
    attempts = 0

    async def on_start(self) -> None:
        type(self).attempts += 1
        raise Kaboom("on_start failed")


class FailingInit(Actor):
    def __init__(self, fail: bool) -> None:
        if fail:
            raise Kaboom("constructor failed")

    @handler
    async def ping(self, msg: Ping) -> str:
        return "pong"


# -- spawning and lifecycle ---------------------------------------------------------------------


async def test_on_start_runs_before_the_first_message(
    system: triactor.ActorSystem, autojump_clock: MockClock
) -> None:
    events: Events = []
    ref = await system.spawn(Tracker, events, start_delay=2, name="t")
    assert trio.current_time() == pytest.approx(2)  # spawn returned after on_start
    assert events[0] == ("t", "started")
    assert await ref.ask(Item(1)) == 1
    assert events == [("t", "started"), ("t", "item 0"), ("t", "item 1")]


async def test_constructor_gets_spawn_arguments(system: triactor.ActorSystem) -> None:
    events: Events = []
    ref = await system.spawn(Tracker, events, name="kw", on_stop_mode="ok")
    await ref.stop()
    assert events == [("kw", "started"), ("kw", "item 0"), ("kw", "on_stop")]


async def test_on_start_failure_reaches_the_spawner_and_frees_the_name(
    system: triactor.ActorSystem,
) -> None:
    FailingStart.attempts = 0
    with pytest.raises(Kaboom, match="on_start failed"):
        await system.spawn(FailingStart, name="fragile")
    assert FailingStart.attempts == 1
    with pytest.raises(ActorNotFound):
        system.lookup("fragile")
    with pytest.raises(Kaboom):
        await system.spawn(FailingStart, name="fragile")  # the name was free again
    ref = await system.spawn(Recorder, name="fragile")
    assert await ref.ask(Ping()) == "pong"  # the system survived both failures
    assert system.statistics().actors == 1


async def test_constructor_failure_reaches_the_spawner_and_frees_the_name(
    system: triactor.ActorSystem,
) -> None:
    with pytest.raises(Kaboom, match="constructor failed"):
        await system.spawn(FailingInit, True, name="init")
    with pytest.raises(ActorNotFound):
        system.lookup("init")
    ref = await system.spawn(FailingInit, False, name="init")
    assert await ref.ask(Ping()) == "pong"
    assert system.statistics().top_level == 1


async def test_on_stop_runs_on_a_normal_stop(
    system: triactor.ActorSystem, autojump_clock: MockClock
) -> None:
    events: Events = []
    ref = await system.spawn(Tracker, events, name="t")
    await ref.stop()
    assert events[-1] == ("t", "on_stop")
    assert not ref.is_alive


async def test_on_stop_that_hangs_is_cut_off_at_the_shutdown_timeout(
    system: triactor.ActorSystem,
    autojump_clock: MockClock,
    log_records: list[dict[str, Any]],
) -> None:
    events: Events = []
    ref = await system.spawn(Tracker, events, name="t", on_stop_mode="hang", shutdown_timeout=2)
    start = trio.current_time()
    await ref.stop()
    assert trio.current_time() - start == pytest.approx(2)
    assert events[-2:] == [("t", "on_stop"), ("t", "on_stop cut off")]
    assert (await system.watch(ref)).reason == "normal"
    assert any(
        "on_stop" in record["message"] and "/t" in record["message"]
        for record in log_records
        if record["level"].name == "WARNING"
    )


async def test_on_stop_that_raises_is_logged_and_the_stop_stays_normal(
    system: triactor.ActorSystem, log_records: list[dict[str, Any]]
) -> None:
    ref = await system.spawn(Tracker, [], name="t", on_stop_mode="raise")
    await ref.stop()
    assert await system.watch(ref) == Terminated("/t", "normal", None)
    assert any(
        record["exception"] is not None and "on_stop" in record["message"]
        for record in log_records
        if record["level"].name == "ERROR"
    )


async def test_on_stop_runs_after_a_crash(autojump_clock: MockClock) -> None:
    events: Events = []
    with pytest.raises(Kaboom):
        async with open_actor_system(check_messages=True) as system:
            ref = await system.spawn(Tracker, events, name="t")
            await ref.tell(Boom())
            await trio.sleep_forever()
    assert events[-1] == ("t", "on_stop")
    notice = await system.watch(ref)
    assert (notice.actor, notice.reason) == ("/t", "crashed")
    assert "Kaboom" in (notice.error or "")


async def test_shutdown_stops_actors_in_reverse_spawn_order_each_draining_first(
    autojump_clock: MockClock,
) -> None:
    events: Events = []
    async with open_actor_system(check_messages=True) as system:
        refs = [await system.spawn(Tracker, events, name=name) for name in ("a", "b", "c")]
        for ref in refs:
            for value in (1, 2, 3):
                await ref.tell(Item(value))
    stops = [name for name, what in events if what == "on_stop"]
    assert stops == ["c", "b", "a"]
    for name in ("a", "b", "c"):
        handled = [what for who, what in events if who == name]
        assert handled == ["started", "item 0", "item 1", "item 2", "item 3", "on_stop"]
    assert system.dead_letters.count == 0
    assert not any(ref.is_alive for ref in refs)
    assert system.statistics() == triactor.SystemStatistics(0, 0, 0, True)


async def test_shutdown_cancels_an_actor_that_ignores_the_stop_and_goes_on(
    autojump_clock: MockClock,
) -> None:
    events: Events = []
    async with open_actor_system(check_messages=True) as system:
        polite = await system.spawn(Tracker, events, name="polite")
        stubborn = await system.spawn(
            Tracker, events, name="stubborn", gate=trio.Event(), shutdown_timeout=3
        )
        await stubborn.tell(Hold())  # never released
        await stubborn.tell(Item(9))
        await wait_all_tasks_blocked()
        start = trio.current_time()
    assert trio.current_time() - start == pytest.approx(3)
    assert [name for name, what in events if what == "on_stop"] == ["stubborn", "polite"]
    assert ("stubborn", "item 9") not in events
    assert (await system.watch(stubborn)).reason == "cancelled"
    assert (await system.watch(polite)).reason == "normal"
    assert [(d.message, d.reason, d.detail) for d in system.dead_letters] == [
        (Hold(), DeadLetterReason.ACTOR_STOPPED, "stopped while handling it"),
        (Item(9), DeadLetterReason.ACTOR_STOPPED, ""),
    ]


async def test_an_error_in_the_block_stops_actors_gracefully_and_propagates_bare(
    autojump_clock: MockClock,
) -> None:
    events: Events = []
    with pytest.raises(ValueError, match="user code"):
        async with open_actor_system(check_messages=True) as system:
            ref = await system.spawn(Tracker, events, name="t")
            await ref.tell(Item(1))
            raise ValueError("user code")
    assert events == [("t", "started"), ("t", "item 0"), ("t", "item 1"), ("t", "on_stop")]
    assert system.dead_letters.count == 0


async def test_a_cancel_scope_around_the_system_is_honored(autojump_clock: MockClock) -> None:
    events: Events = []
    with trio.move_on_after(7) as scope:
        async with open_actor_system(check_messages=True) as system:
            ref = await system.spawn(Tracker, events, name="t")
            await ref.tell(Item(1))
            await trio.sleep_forever()
    assert scope.cancelled_caught
    assert trio.current_time() == pytest.approx(7)
    assert events[-1] == ("t", "on_stop")
    assert ("t", "item 1") in events
    # An enclosing cancellation reaches the actor's task directly: it ends as cancelled, and
    # on_stop still runs.
    assert (await system.watch(ref)).reason == "cancelled"


async def test_spawn_after_shutdown_raises_actor_stopped() -> None:
    async with open_actor_system(check_messages=True) as system:
        pass
    with pytest.raises(ActorStopped, match="shutting down"):
        await system.spawn(Recorder)


# -- refs, lookup, watch ------------------------------------------------------------------------


async def test_ref_repr_is_alive_and_statistics(
    system: triactor.ActorSystem, autojump_clock: MockClock
) -> None:
    gate = trio.Event()
    ref = await system.spawn(Recorder, gate=gate, name="rec", mailbox_capacity=7)
    assert ref.name == "rec"
    assert ref.path == "/rec"
    await ref.ask(Item(1))
    stats = ref.statistics()  # type: ignore[attr-defined]
    assert (stats.path, stats.state, stats.processed, stats.failures, stats.restarts) == (
        "/rec",
        "idle",
        1,
        0,
        0,
    )
    assert stats.current_message_type is None
    await ref.tell(Hold())
    await ref.tell(Item(2))
    await wait_all_tasks_blocked()
    stats = ref.statistics()  # type: ignore[attr-defined]
    assert (stats.state, stats.current_message_type) == ("processing", "Hold")
    assert (stats.mailbox.depth, stats.mailbox.capacity) == (1, 7)
    assert repr(ref) == "<ActorRef /rec processing, 1/7 queued>"
    assert ref.is_alive
    gate.set()
    await ref.stop()
    assert not ref.is_alive
    assert repr(ref) == "<ActorRef /rec stopped, 0/7 queued>"
    assert ref.statistics().mailbox.closed  # type: ignore[attr-defined]


async def test_default_names_are_unique(system: triactor.ActorSystem) -> None:
    first = await system.spawn(Recorder)
    second = await system.spawn(Recorder)
    assert first.name != second.name
    assert first.name.startswith("Recorder")
    assert first.path == "/" + first.name
    assert first != second
    assert system.lookup(first.name) == first
    assert len({first, second, system.lookup(second.name)}) == 2


async def test_lookup_by_name_and_by_path(system: triactor.ActorSystem) -> None:
    ref = await system.spawn(Recorder, name="finder")
    assert system.lookup("finder") == ref
    assert system.lookup("/finder") == ref
    assert system.actors() == [ref]
    with pytest.raises(ActorNotFound, match=r"'nobody'.*finder"):
        system.lookup("nobody")
    with pytest.raises(LookupError):
        system.lookup("/nobody")
    await ref.stop()
    with pytest.raises(ActorNotFound):
        system.lookup("finder")
    assert system.actors() == []


async def test_watch_returns_a_notice_when_the_actor_stops_and_at_once_after(
    system: triactor.ActorSystem, autojump_clock: MockClock
) -> None:
    ref = await system.spawn(Recorder, name="watched")
    notices: list[Terminated] = []
    async with trio.open_nursery() as nursery:

        async def watcher() -> None:
            notices.append(await system.watch(ref))

        nursery.start_soon(watcher)
        nursery.start_soon(watcher)
        await wait_all_tasks_blocked()
        assert notices == []
        await trio.sleep(5)
        assert notices == []
        await ref.stop()
    assert notices == [Terminated("/watched", "normal", None)] * 2
    start = trio.current_time()
    with trio.fail_after(1):
        assert await system.watch(ref) == Terminated("/watched", "normal", None)
    assert trio.current_time() == start


async def test_actor_stop_from_inside_on_start_is_a_normal_exit(
    system: triactor.ActorSystem,
) -> None:
    class Quitter(Actor):
        async def on_start(self) -> None:
            self.stop()

    ref = await system.spawn(Quitter, name="quitter")
    assert (await system.watch(ref)).reason == "normal"


# -- dead letters -------------------------------------------------------------------------------


async def test_dead_letters_count_iterate_and_count_by_reason(
    system: triactor.ActorSystem, autojump_clock: MockClock
) -> None:
    dead = system.dead_letters
    assert (dead.count, len(dead), list(dead), dead.count_by_reason()) == (0, 0, [], {})
    ref = await system.spawn(Recorder, name="r", mailbox_capacity=1, overflow=Overflow.DROP_NEWEST)
    await ref.tell(Item(1))
    await ref.tell(Item(2))  # dropped: the actor has not run yet, Item(1) fills the mailbox
    await ref.stop()  # the stop goes ahead of Item(1), which is then dead-lettered
    await ref.tell(Item(3))
    await ref.tell(Item(4))
    assert dead.count == 4
    assert [(d.target, d.message, d.reason) for d in dead] == [
        ("/r", Item(2), DeadLetterReason.DROPPED_NEWEST),
        ("/r", Item(1), DeadLetterReason.ACTOR_STOPPED),
        ("/r", Item(3), DeadLetterReason.ACTOR_STOPPED),
        ("/r", Item(4), DeadLetterReason.ACTOR_STOPPED),
    ]
    assert dead.count_by_reason() == {
        DeadLetterReason.DROPPED_NEWEST: 1,
        DeadLetterReason.ACTOR_STOPPED: 3,
    }
    assert "count=4" in repr(dead)
    assert system.statistics().dead_letters == 4


async def test_dead_letters_keep_only_the_most_recent() -> None:
    async with open_actor_system(check_messages=True, dead_letters_kept=2) as system:
        ref = await system.spawn(Recorder)
        await ref.stop()
        for value in range(5):
            await ref.tell(Item(value))
    assert system.dead_letters.count == 5
    assert [d.message for d in system.dead_letters] == [Item(3), Item(4)]
    assert system.dead_letters.count_by_reason() == {DeadLetterReason.ACTOR_STOPPED: 5}


# -- bad input at the boundary ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value", "error"),
    [
        ("mailbox_capacity", 0, ValueError),
        ("mailbox_capacity", -5, ValueError),
        ("mailbox_capacity", "10", TypeError),
        ("mailbox_capacity", 1.0, TypeError),
        ("overflow", "drop_oldest", TypeError),
        ("max_concurrency", 0, ValueError),
        ("max_concurrency", 2.0, TypeError),
        ("shutdown_timeout", -0.5, ValueError),
        ("shutdown_timeout", "1", TypeError),
    ],
)
async def test_bad_spawn_options_name_the_actor(
    system: triactor.ActorSystem, option: str, value: object, error: type[Exception]
) -> None:
    with pytest.raises(error, match=rf"Recorder 'badly'.*{option}"):
        await system.spawn(Recorder, name="badly", **{option: value})
    ref = await system.spawn(Recorder, name="badly")  # nothing was registered
    assert await ref.ask(Ping()) == "pong"


class NotAnActor:
    pass


@pytest.mark.parametrize(
    "target",
    [NotAnActor, Actor.__new__(Recorder), "Recorder", lambda: Recorder],
    ids=["class", "instance", "string", "function"],
)
async def test_spawn_of_a_non_actor_is_a_type_error(
    system: triactor.ActorSystem, target: object
) -> None:
    with pytest.raises(TypeError, match="Actor subclass"):
        await system.spawn(target)  # type: ignore[arg-type]


async def test_duplicate_and_malformed_names(system: triactor.ActorSystem) -> None:
    ref = await system.spawn(Recorder, name="one")
    with pytest.raises(ValueError, match=r"'one'.*/one"):
        await system.spawn(Recorder, name="one")
    with pytest.raises(ValueError, match="'/'"):
        await system.spawn(Recorder, name="a/b")
    with pytest.raises(ValueError, match="non-empty"):
        await system.spawn(Recorder, name="")
    with pytest.raises(TypeError, match="str"):
        await system.spawn(Recorder, name=42)  # type: ignore[arg-type]
    assert system.actors() == [ref]


@pytest.mark.parametrize(
    ("options", "error"),
    [({"thread_limit": 0}, ValueError), ({"dead_letters_kept": -1}, ValueError)],
)
async def test_bad_system_options(options: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        async with open_actor_system(**options):
            pass  # pragma: no cover


# -- check_messages -----------------------------------------------------------------------------


@attrs.frozen
class WithCallback:
    callback: Callable[[], None]


@attrs.frozen
class WithEvent:
    event: trio.Event


@attrs.frozen
class WithAnything:
    payload: Any


@attrs.frozen
class Nested:
    items: tuple[Item, ...]
    label: str | None = None


class Omnivore(Actor):
    @handler
    async def anything(self, msg: WithCallback | WithEvent | WithAnything | Nested) -> str:
        return type(msg).__name__


async def test_check_messages_rejects_what_cattrs_cannot_round_trip(
    system: triactor.ActorSystem,
) -> None:
    ref = await system.spawn(Omnivore)
    for message in (WithCallback(lambda: None), WithEvent(trio.Event()), NotAnActor()):
        name = type(message).__qualname__
        with pytest.raises(TypeError, match=rf"{name}.*serializ"):
            await ref.tell(message)
        with pytest.raises(TypeError, match=name):
            await ref.ask(message)
        with pytest.raises(TypeError, match=name):
            ref.try_tell(message)
    assert ref.statistics().mailbox.depth == 0  # type: ignore[attr-defined]
    assert system.dead_letters.count == 0


async def test_check_messages_accepts_attrs_messages(system: triactor.ActorSystem) -> None:
    ref = await system.spawn(Omnivore)
    assert await ref.ask(Nested((Item(1), Item(2)), "x")) == "Nested"
    assert await ref.ask(WithAnything({"a": [1, 2.5, "s", None]})) == "WithAnything"


async def test_check_messages_rejects_a_lambda_in_an_untyped_field(
    system: triactor.ActorSystem,
) -> None:
    ref = await system.spawn(Omnivore)
    with pytest.raises(TypeError, match="WithAnything"):
        await ref.tell(WithAnything(lambda: None))


async def test_without_check_messages_anything_goes() -> None:
    async with open_actor_system() as system:
        ref = await system.spawn(Omnivore)
        assert await ref.ask(WithEvent(trio.Event())) == "WithEvent"
