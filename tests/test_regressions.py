"""Regression tests for defects found in review: each failed before its fix."""

from __future__ import annotations

import attrs
import pytest
import trio
import trio.testing

from triactor import (
    Actor,
    ActorStopped,
    AskCycleError,
    Backoff,
    ChildSpec,
    Restart,
    RestartIntensityExceeded,
    Strategy,
    Supervisor,
    handler,
    open_actor_system,
)
from triactor.pools._context import default_priority


@attrs.frozen
class Boom:
    pass


@attrs.frozen
class SlowBoom:
    pass


@attrs.frozen
class What:
    pass


class W(Actor):
    starts: dict[str, int] = {}  # noqa: RUF012 - shared by the tests below, reset by each
    fail_once: set[str] = set()  # noqa: RUF012

    async def on_start(self) -> None:
        W.starts[self.name] = W.starts.get(self.name, 0) + 1
        if self.name in W.fail_once:
            W.fail_once.discard(self.name)
            raise RuntimeError("start fails once")

    @handler
    async def boom(self, msg: Boom) -> None:
        raise ValueError("boom")

    @handler
    async def slow_boom(self, msg: SlowBoom) -> None:
        await trio.sleep(1)
        raise ValueError("slow boom")


@pytest.fixture(autouse=True)
def _reset() -> None:
    W.starts.clear()
    W.fail_once.clear()


class Plain(Actor):
    pass


async def test_a_cancelled_spawn_leaves_nothing_behind(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_actor_system() as system:
        with trio.CancelScope() as scope:
            scope.cancel()
            await system.spawn(Plain, name="x")
        assert system.actors() == []
        await system.spawn(Plain, name="x")  # the name is free
    # ...and the shutdown did not hang on a cell that never ran.


async def test_backoffs_of_two_children_do_not_cancel_each_other(
    autojump_clock: trio.testing.MockClock,
) -> None:
    tree = Supervisor(
        "root",
        [ChildSpec(W, name="a"), ChildSpec(W, name="b")],
        max_restarts=10,
        within=60,
        backoff=Backoff(min=1.0, max=1.0, jitter=0),
    )
    async with open_actor_system() as system:
        await system.spawn(tree)
        await system.lookup("a").tell(Boom())
        await trio.sleep(0.1)
        await system.lookup("b").tell(Boom())
        await trio.sleep(10)
        assert W.starts == {"a": 2, "b": 2}


@pytest.mark.parametrize("failing_restart", [Restart.PERMANENT, Restart.TEMPORARY])
async def test_a_start_failure_does_not_skip_later_children(
    autojump_clock: trio.testing.MockClock, failing_restart: Restart
) -> None:
    W.fail_once.add("b")
    tree = Supervisor(
        "root",
        [
            ChildSpec(W, name="a"),
            ChildSpec(W, name="b", restart=failing_restart),
            ChildSpec(W, name="c"),
        ],
        max_restarts=10,
        within=60,
    )
    async with open_actor_system() as system:
        await system.spawn(tree)
        expected_b = 2 if failing_restart is Restart.PERMANENT else 1
        assert W.starts == {"a": 1, "b": expected_b, "c": 1}


async def test_one_for_all_does_not_revive_a_transient_child_stopped_for_good(
    autojump_clock: trio.testing.MockClock,
) -> None:
    tree = Supervisor(
        "root",
        [ChildSpec(W, name="t", restart=Restart.TRANSIENT), ChildSpec(W, name="p")],
        strategy=Strategy.ONE_FOR_ALL,
        max_restarts=10,
        within=60,
    )
    async with open_actor_system() as system:
        await system.spawn(tree)
        t = system.lookup("t")
        await t.stop()
        assert not t.is_alive  # stopped for good when stop() returns
        await system.lookup("p").tell(Boom())
        await trio.sleep(1)
        assert W.starts == {"t": 1, "p": 2}
        assert not t.is_alive


async def test_a_subtree_that_cannot_be_built_is_all_or_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    tree = Supervisor(
        "root",
        [Supervisor("sub", [ChildSpec(Plain, name="x"), ChildSpec(Plain, name="y")])],
        max_restarts=2,
    )
    with pytest.raises(RestartIntensityExceeded):
        async with open_actor_system() as system:
            await system.spawn(Plain, name="y")  # takes the name the subtree needs
            await system.spawn(tree)
    # Never ran with a partial set of children: every attempt failed the same way.


async def test_stop_during_a_crash_still_stops_the_actor(
    autojump_clock: trio.testing.MockClock,
) -> None:
    tree = Supervisor("root", [ChildSpec(W, name="s", restart=Restart.TRANSIENT)])
    async with open_actor_system() as system:
        await system.spawn(tree)
        s = system.lookup("s")
        await s.tell(SlowBoom())
        await trio.sleep(0.5)  # the handler runs; it will crash at 1 s
        await s.stop()  # the crash wins; the restarted incarnation takes the stop
        assert not s.is_alive
        await trio.sleep(5)
        assert not s.is_alive


class SlowStart(Actor):
    shutdown_timeout = 1.0

    async def on_start(self) -> None:
        await trio.sleep(10)


@attrs.frozen
class SpawnSlow:
    pass


class Spawner(Actor):
    @handler
    async def go(self, msg: SpawnSlow) -> None:
        await self.system.spawn(SlowStart, name="slow")


async def test_a_start_cut_short_by_shutdown_is_actor_stopped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with pytest.raises(ActorStopped, match="before its on_start finished"):
        async with open_actor_system() as system:
            await (await system.spawn(Spawner, name="spawner")).tell(SpawnSlow())
            await trio.sleep(0.1)
    # Not Trio's internal "child exited without calling task_status.started()".


class High(Actor):
    priority = "high"

    @handler
    async def spawn_low(self, msg: What) -> str | None:
        low = await self.system.spawn(Low, name="low")
        reply: str | None = await low.ask(What())
        return reply


class Low(Actor):
    @handler
    async def what(self, msg: What) -> str | None:
        return default_priority.get()


async def test_an_actor_does_not_inherit_its_spawners_pool_priority(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_actor_system() as system:
        high = await system.spawn(High, name="high")
        assert await high.ask(What()) is None


def test_child_spec_validates_its_options() -> None:
    with pytest.raises(ValueError, match="mailbox_capacity"):
        ChildSpec(Plain, mailbox_capacity=0)
    with pytest.raises(TypeError, match="overflow"):
        ChildSpec(Plain, overflow="block")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_concurrency"):
        ChildSpec(Plain, max_concurrency=-1)


@attrs.frozen
class Relay:
    to: str


class Serial(Actor):
    @handler
    async def relay(self, msg: Relay) -> str:
        reply: str = await self.system.lookup(msg.to).ask(Relay("serial"))
        return reply


class Concurrent(Actor):
    max_concurrency = 4

    @handler
    async def relay(self, msg: Relay) -> str:
        reply: str = await self.system.lookup(msg.to).ask(Relay("concurrent"))
        return reply


async def test_an_ask_cycle_through_a_concurrent_actor_is_refused(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # serial -> concurrent -> serial: serial is busy waiting, so this would hang. The refusal
    # reaches the first asker, and the unsupervised actors' crashes end the system with it.
    with pytest.raises(AskCycleError, match="/serial -> /concurrent -> /serial"):
        async with open_actor_system() as system:
            serial = await system.spawn(Serial, name="serial")
            await system.spawn(Concurrent, name="concurrent")
            await serial.ask(Relay("concurrent"))
