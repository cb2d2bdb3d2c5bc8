"""Scenario 21: many actors in one system; exact counts under churn and restarts."""

from __future__ import annotations

import random
import time

import attrs
import trio
import trio.testing

from triactor import Actor, ChildSpec, ChildState, Supervisor, handler, open_actor_system


@attrs.frozen
class Boom:
    pass


class Idle(Actor):
    mailbox_capacity = 4

    @handler
    async def boom(self, msg: Boom) -> None:
        raise ValueError("boom")


async def _spawn_and_stop(count: int) -> tuple[float, float]:
    """Seconds per actor to spawn ``count`` actors, and to stop them all."""
    async with open_actor_system() as system:
        start = time.perf_counter()
        for _ in range(count):
            await system.spawn(Idle)
        spawned = time.perf_counter()
        assert system.statistics().actors == count
        await system.shutdown()
        stopped = time.perf_counter()
        assert system.statistics().actors == 0
    return (spawned - start) / count, (stopped - spawned) / count


async def test_spawn_and_stop_grow_about_linearly() -> None:
    small_spawn, small_stop = await _spawn_and_stop(1_000)
    large_spawn, large_stop = await _spawn_and_stop(100_000)
    # 100x the actors may cost at most 10x the time per actor (a generous bound: it catches a
    # quadratic step, not noise).
    assert large_spawn <= 10 * small_spawn, (small_spawn, large_spawn)
    assert large_stop <= 10 * small_stop, (small_stop, large_stop)


async def test_child_counts_stay_exact_under_churn_and_restarts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    rng = random.Random(7)
    async with open_actor_system() as system:
        root = await system.spawn(Supervisor("root", [], max_restarts=10_000, within=1))
        live: set[str] = set()
        serial = 0
        for _round in range(40):
            for _ in range(rng.randrange(5, 30)):
                serial += 1
                name = f"a{serial}"
                await system.start_child(root, ChildSpec(Idle, name=name))
                live.add(name)
            for name in rng.sample(sorted(live), k=len(live) // 4):
                await system.terminate_child(root, name)
                live.remove(name)
            for name in rng.sample(sorted(live), k=min(5, len(live))):
                await system.lookup(name).tell(Boom())  # crash: a restart, not a removal
            counts = await system.count_children(root)
            assert counts.specs == len(live)
            assert counts.running + counts.restarting == len(live)
            await trio.testing.wait_all_tasks_blocked()
            counts = await system.count_children(root)
            assert (counts.specs, counts.running, counts.stopped) == (len(live), len(live), 0)
            children = await system.which_children(root)
            assert {c.name for c in children} == live
            assert all(c.state is ChildState.RUNNING for c in children)
        assert system.statistics().actors == len(live) + 1
