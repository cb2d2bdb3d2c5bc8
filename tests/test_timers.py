"""Timers (``self.timers``): once, every with a fixed delay, replacement by key, cancellation,
and their life bound to one incarnation (never fired into the next, never dead-lettered)."""

from __future__ import annotations

import attrs
import pytest
import trio
import trio.testing

import triactor
from triactor import Actor, ChildSpec, NoHandler, Supervisor, handler, open_actor_system


@attrs.frozen
class Tick:
    label: str = "tick"


@attrs.frozen
class StartOnce:
    key: str
    label: str
    after: float


@attrs.frozen
class StartEvery:
    key: str
    label: str
    interval: float


@attrs.frozen
class Cancel:
    key: str


@attrs.frozen
class Busy:
    seconds: float
    crash: bool = False
    then_cancel: str = ""


@attrs.frozen
class Keys:
    pass


class Crashed(Exception):
    pass


class Clocked(Actor):
    """Records (incarnation, label, time) for every tick into a journal shared across restarts."""

    incarnations = 0

    def __init__(self, journal: list[tuple[int, str, float]], tick_seconds: float = 0.0) -> None:
        type(self).incarnations += 1
        self.incarnation = type(self).incarnations
        self.journal = journal
        self.tick_seconds = tick_seconds

    @handler
    async def tick(self, msg: Tick) -> None:
        self.journal.append((self.incarnation, msg.label, trio.current_time()))
        await trio.sleep(self.tick_seconds)

    @handler
    async def start_once(self, msg: StartOnce) -> None:
        self.timers.once(msg.key, Tick(msg.label), after=msg.after)

    @handler
    async def start_every(self, msg: StartEvery) -> None:
        self.timers.every(msg.key, Tick(msg.label), interval=msg.interval)

    @handler
    async def cancel(self, msg: Cancel) -> None:
        self.timers.cancel(msg.key)

    @handler
    async def busy(self, msg: Busy) -> None:
        await trio.sleep(msg.seconds)
        if msg.then_cancel:
            self.timers.cancel(msg.then_cancel)
        if msg.crash:
            raise Crashed("crashed while a tick was queued")

    @handler
    async def keys(self, msg: Keys) -> list[str]:
        return sorted(str(key) for key in ("a", "b", "tick", "k") if key in self.timers)


def labels(journal: list[tuple[int, str, float]]) -> list[str]:
    return [label for _, label, _ in journal]


def times(journal: list[tuple[int, str, float]]) -> list[float]:
    return [when for _, _, when in journal]


async def test_once_fires_once_after_its_delay(autojump_clock: trio.testing.MockClock) -> None:
    journal: list[tuple[int, str, float]] = []
    async with open_actor_system(check_messages=True) as system:
        ref = await system.spawn(Clocked, journal)
        await ref.tell(StartOnce("a", "once", 2.5))
        assert await ref.ask(Keys()) == ["a"]
        await trio.sleep(10)
        assert await ref.ask(Keys()) == []  # the key is free once the tick was handled
    assert labels(journal) == ["once"]
    assert times(journal) == [pytest.approx(2.5)]
    assert system.dead_letters.count == 0


async def test_every_has_a_fixed_delay_and_never_piles_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Each tick takes 3 s to handle, the interval is 1 s: ticks come 1 s after the previous one
    # was handled (fixed delay), never queued behind each other.
    journal: list[tuple[int, str, float]] = []
    async with open_actor_system(check_messages=True) as system:
        ref = await system.spawn(Clocked, journal, 3.0)
        await ref.tell(StartEvery("tick", "t", 1.0))
        await trio.sleep(16.5)
        assert ref.statistics().mailbox.control_depth == 0
        await ref.tell(Cancel("tick"))
    assert times(journal) == pytest.approx([1.0, 5.0, 9.0, 13.0])
    assert system.dead_letters.count == 0


async def test_periodic_timer_keeps_its_rate_with_a_fast_handler(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal: list[tuple[int, str, float]] = []
    async with open_actor_system(check_messages=True) as system:
        ref = await system.spawn(Clocked, journal)
        await ref.tell(StartEvery("tick", "t", 2.0))
        await trio.sleep(9)
    assert times(journal) == pytest.approx([2.0, 4.0, 6.0, 8.0])
    assert system.dead_letters.count == 0  # the clean shutdown dead-letters no tick


async def test_a_reused_key_replaces_the_timer(autojump_clock: trio.testing.MockClock) -> None:
    journal: list[tuple[int, str, float]] = []
    async with open_actor_system(check_messages=True) as system:
        ref = await system.spawn(Clocked, journal)
        await ref.tell(StartEvery("k", "old", 1.0))
        await trio.sleep(1.5)
        await ref.tell(StartOnce("k", "new", 3.0))
        await trio.sleep(10)
    assert labels(journal) == ["old", "new"]
    assert times(journal) == pytest.approx([1.0, 4.5])


async def test_cancel_skips_a_tick_already_queued(autojump_clock: trio.testing.MockClock) -> None:
    journal: list[tuple[int, str, float]] = []
    async with open_actor_system(check_messages=True) as system:
        ref = await system.spawn(Clocked, journal)
        await ref.tell(StartOnce("a", "a", 1.0))
        # The tick is posted at 1 s, while the actor is busy; the handler then cancels it.
        await ref.tell(Busy(2.0, then_cancel="a"))
        await trio.sleep(5)
        assert ref.statistics().mailbox.control_depth == 0
        await ref.tell(StartOnce("b", "b", 1.0))
        await trio.sleep(5)
    assert labels(journal) == ["b"]
    assert system.dead_letters.count == 0


async def test_a_tick_waits_for_the_current_message_not_for_the_queue(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal: list[tuple[int, str, float]] = []
    order: list[str] = []

    class Ordered(Clocked):
        mailbox_capacity = 2

        @handler
        async def busy(self, msg: Busy) -> None:
            order.append(f"busy {msg.seconds}")
            await trio.sleep(msg.seconds)

        @handler
        async def tick(self, msg: Tick) -> None:
            order.append(msg.label)

    async with open_actor_system() as system:
        ref = await system.spawn(Ordered, journal)
        await ref.tell(StartOnce("a", "tick", 1.0))
        await ref.tell(Busy(2.0))
        await ref.tell(Busy(0.5))
        await ref.tell(Busy(0.25))  # the mailbox is full now
        assert ref.try_tell(Busy(9.0)) is False
        await trio.sleep(10)
    assert order == ["busy 2.0", "tick", "busy 0.5", "busy 0.25"]


async def test_stop_cancels_timers_and_leaves_no_dead_letter(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal: list[tuple[int, str, float]] = []
    async with open_actor_system(check_messages=True) as system:
        ref = await system.spawn(Clocked, journal)
        await ref.tell(StartEvery("tick", "t", 1.0))
        await ref.tell(StartOnce("later", "later", 50.0))
        await trio.sleep(2.5)
        await ref.stop()
        await trio.sleep(100)
    assert labels(journal) == ["t", "t"]
    assert system.dead_letters.count == 0


async def test_a_restart_cancels_timers_and_a_queued_tick_never_reaches_the_new_incarnation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal: list[tuple[int, str, float]] = []

    class Restarted(Clocked):
        incarnations = 0

    tree = Supervisor("root", [ChildSpec(Restarted, args=(journal,), name="clocked")])
    async with open_actor_system(check_messages=True) as system:
        await system.spawn(tree)
        ref = system.lookup("clocked")
        await ref.tell(StartOnce("queued", "queued", 1.0))  # posted at 1 s, while busy
        await ref.tell(StartOnce("pending", "pending", 5.0))  # still sleeping at the crash
        await ref.tell(StartEvery("every", "every", 1.5))
        await ref.tell(Busy(2.0, crash=True))
        await trio.sleep(20)
        assert ref.statistics().restarts == 1
        assert Restarted.incarnations == 2
    assert journal == []  # nothing fired, in the old incarnation or the new one
    dead = list(system.dead_letters)
    assert [letter.message for letter in dead] == [Busy(2.0, crash=True)]  # the crash, only


async def test_timers_started_in_on_start_run_again_after_a_restart(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal: list[tuple[int, str, float]] = []

    class Heartbeat(Clocked):
        incarnations = 0

        async def on_start(self) -> None:
            self.timers.every("beat", Tick(f"beat{self.incarnation}"), interval=1.0)

    tree = Supervisor("root", [ChildSpec(Heartbeat, args=(journal,), name="heart")])
    async with open_actor_system(check_messages=True) as system:
        await system.spawn(tree)
        ref = system.lookup("heart")
        await trio.sleep(2.5)  # beats at 1 and 2
        await ref.tell(Busy(0.0, crash=True))  # at 2.5: restart; the new beats start at 3.5
        await trio.sleep(2.2)
    assert labels(journal) == ["beat1", "beat1", "beat2", "beat2"]
    assert times(journal) == pytest.approx([1.0, 2.0, 3.5, 4.5])


async def test_timers_from_the_constructor_a_sync_handler_and_a_concurrent_actor(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[tuple[str, float]] = []

    class Mixed(Actor):
        def __init__(self) -> None:
            self.timers.once("init", Tick("init"), after=1.0)

        @handler
        def start(self, msg: StartOnce) -> None:  # a worker thread
            self.timers.once(msg.key, Tick(msg.label), after=msg.after)
            if msg.key == "gone":
                # In the same handler: the autojumping clock may run on while a thread works,
                # but a tick queued meanwhile waits for this handler and is then skipped.
                self.timers.cancel(msg.key)

        @handler
        async def tick(self, msg: Tick) -> None:
            seen.append((msg.label, trio.current_time()))

    class Concurrent(Mixed):
        max_concurrency = 4

    async with open_actor_system(check_messages=True) as system:
        for cls in (Mixed, Concurrent):
            ref = await system.spawn(cls)
            # ask: the autojumping clock must not run ahead while a worker thread runs
            await ref.ask(StartOnce("sync", f"{cls.__name__} sync", 2.0))
            if cls is Mixed:
                # One message at a time: a tick queued while the handler runs waits for it.
                await ref.ask(StartOnce("gone", "never", 0.0))
            await trio.sleep(5)
            await ref.stop()
    assert [label for label, _ in seen] == ["init", "Mixed sync", "init", "Concurrent sync"]
    assert system.dead_letters.count == 0


async def test_a_timer_started_while_draining_is_ignored(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal: list[tuple[int, str, float]] = []
    async with open_actor_system(check_messages=True) as system:
        ref = await system.spawn(Clocked, journal)
        await ref.tell(Busy(1.0))
        await ref.tell(StartOnce("a", "a", 0.0))  # handled while the system drains the actor
    assert journal == []
    assert system.dead_letters.count == 0


async def test_bad_timers_are_refused_where_they_are_started(
    autojump_clock: trio.testing.MockClock,
) -> None:
    failures: list[BaseException] = []

    @attrs.frozen
    class Other:
        pass

    class Strict(Actor):
        @handler
        async def tick(self, msg: Tick) -> None:
            pass

        @handler
        async def try_bad(self, msg: Busy) -> None:
            for attempt in (
                lambda: self.timers.once("x", Other(), after=1.0),
                lambda: self.timers.every("x", Tick(), interval=0),
                lambda: self.timers.every("x", Tick(), interval=float("nan")),
                lambda: self.timers.once("x", Tick(), after=-1),
                lambda: self.timers.once("x", Tick(), after="soon"),  # type: ignore[arg-type]
            ):
                try:
                    attempt()
                except Exception as exc:
                    failures.append(exc)

    async with open_actor_system() as system:
        ref = await system.spawn(Strict)
        await ref.tell(Busy(0.0))
    kinds = [type(exc) for exc in failures]
    assert kinds == [NoHandler, ValueError, ValueError, ValueError, TypeError]
    assert "Other" in str(failures[0]) and "Strict" in str(failures[0])
    assert isinstance(triactor.Timers, type)
