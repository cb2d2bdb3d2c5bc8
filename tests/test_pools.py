"""PriorityPool: hand-off, priority and shares, cancellation, load shedding, preemption, rate gate.

Tests where time matters take the ``autojump_clock`` fixture (``MockClock(autojump_threshold=0)``).
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import pytest
import trio
from trio.testing import MockClock, assert_checkpoints, wait_all_tasks_blocked

from triactor import PoolOverloaded
from triactor.pools import Lease, PriorityPool
from triactor.pools._context import default_priority
from triactor.pools._owner import default_owner
from triactor.pools._preemption import victims
from triactor.pools._queue import Waiter

THREE = {"high": 0.0, "mid": 0.2, "low": 0.1}
STRICT = {"high": 0.0, "mid": 0.0, "low": 0.0}


async def take(
    pool: PriorityPool, log: list[str], name: str, hold: float = 0.0, **kwargs: Any
) -> None:
    """Acquire, note the grant, hold for ``hold`` seconds."""
    async with pool.acquire(**kwargs):
        log.append(name)
        if hold:
            await trio.sleep(hold)


async def queue_up(
    nursery: trio.Nursery, pool: PriorityPool, log: list[str], *requests: tuple[str, dict[str, Any]]
) -> None:
    """Start one waiter per request, each parked before the next arrives."""
    for name, kwargs in requests:
        nursery.start_soon(partial(take, pool, log, name, **kwargs))
        await wait_all_tasks_blocked()


# -- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"capacity": 0}, ValueError, "capacity must be at least 1"),
        ({"capacity": -3}, ValueError, "capacity must be at least 1"),
        ({"capacity": 2.0}, TypeError, "capacity must be an int"),
        ({"capacity": True}, TypeError, "capacity must be an int"),
        ({"classes": {"a": 0.7, "b": 0.5}}, ValueError, "sum to 1.2"),
        ({"classes": {}}, ValueError, "at least one"),
        ({"classes": {"a": -0.1}}, ValueError, r"in \[0, 1\]"),
        ({"classes": {"a": 1.5}}, ValueError, r"in \[0, 1\]"),
        ({"classes": {"a": "half"}}, TypeError, "must be a number"),
        ({"classes": {"a": 1e-9}}, ValueError, "at least 1e-6"),
        ({"classes": {"": 0.0}}, ValueError, "must not be empty"),
        ({"classes": {1: 0.0}}, TypeError, "names must be str"),
        ({"classes": ["a", "b"]}, TypeError, "mapping of class name"),
        ({"max_waiting": -1}, ValueError, "max_waiting must be at least 0"),
        ({"max_waiting": 1.5}, TypeError, "max_waiting must be an int"),
        ({"max_waiting": {"nope": 1}}, ValueError, "'nope' is not a class"),
        ({"preempt_after": 0}, ValueError, "preempt_after must be"),
        ({"preempt_after": "1s"}, TypeError, "preempt_after must be a number"),
        ({"rate": 0}, ValueError, "rate must be"),
        ({"rate": math.inf}, ValueError, "rate must be"),
        ({"burst": 3}, ValueError, "burst= only makes sense with rate="),
        ({"rate": 5, "burst": 0.5}, ValueError, "burst must be at least 1"),
        ({"default_priority": "nope"}, ValueError, "'nope' is not a class"),
        ({"stats_window": 0}, ValueError, "stats_window must be at least 1"),
    ],
)
async def test_invalid_configuration(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    args: dict[str, Any] = {"capacity": 4, "classes": THREE} | kwargs
    with pytest.raises(error, match=match):
        PriorityPool(**args)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"priority": "urgent"}, ValueError, "'urgent' is not a class of this pool"),
        ({"priority": 1}, TypeError, "must be a priority class name"),
        ({"weight": 5}, ValueError, "exceeds the pool's capacity 4"),
        ({"weight": 0}, ValueError, "weight must be at least 1"),
        ({"weight": 1.5}, TypeError, "weight must be an int"),
    ],
)
async def test_invalid_requests_fail_at_the_call(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    pool = PriorityPool(4, classes=THREE)
    with pytest.raises(error, match=match):
        pool.acquire(**kwargs)
    with pytest.raises(error, match=match):
        pool.acquire_nowait(**kwargs)
    with pytest.raises(error, match=match):
        async with pool.acquire(**kwargs):
            pass  # pragma: no cover
    assert pool.in_use == 0
    assert pool.waiting == 0


async def test_weight_above_burst_and_unknown_bound_class() -> None:
    pool = PriorityPool(4, classes=THREE, rate=1.0, burst=2)
    with pytest.raises(ValueError, match="exceeds the rate gate's burst 2"):
        pool.acquire(weight=3)
    with pytest.raises(ValueError, match="'x' is not a class"):
        pool.starvation_bound("x")


# -- hand-off and checkpoints --------------------------------------------------------------------


async def test_acquire_is_a_checkpoint_even_when_free() -> None:
    pool = PriorityPool(2)
    with assert_checkpoints():
        async with pool.acquire() as lease:
            assert pool.in_use == 1
            assert isinstance(lease, Lease)
    assert pool.in_use == 0
    with trio.CancelScope() as scope:
        scope.cancel()
        async with pool.acquire():
            pytest.fail("a cancelled acquire must not enter")  # pragma: no cover
    assert scope.cancelled_caught
    assert pool.in_use == 0
    assert pool.statistics().grants == 1


async def test_release_on_every_exit_path() -> None:
    pool = PriorityPool(1)
    with pytest.raises(ZeroDivisionError):
        async with pool.acquire():
            1 / 0  # noqa: B018
    assert pool.in_use == 0
    with trio.move_on_after(0):
        async with pool.acquire():
            await trio.sleep_forever()
    assert pool.in_use == 0
    assert pool.statistics().leases == 0


async def test_strict_priority_and_no_barging() -> None:
    pool = PriorityPool(1, classes=STRICT)
    log: list[str] = []
    holder = pool.acquire_nowait(priority="low")
    async with trio.open_nursery() as nursery:
        await queue_up(
            nursery,
            pool,
            log,
            ("low1", {"priority": "low"}),
            ("mid1", {"priority": "mid"}),
            ("high1", {"priority": "high"}),
            ("low2", {"priority": "low"}),
            ("high2", {"priority": "high"}),
        )
        # Nobody may jump the queue, even a high newcomer, while the slot is held.
        with pytest.raises(trio.WouldBlock):
            pool.acquire_nowait(priority="high")
        holder.release()
    assert log == ["high1", "high2", "mid1", "low1", "low2"]


async def test_freed_slot_goes_to_the_waiter_not_a_newcomer() -> None:
    pool = PriorityPool(1)
    log: list[str] = []
    holder = pool.acquire_nowait()
    async with trio.open_nursery() as nursery:
        await queue_up(nursery, pool, log, ("waiter", {}))
        holder.release()
        # The waiter has not run yet, but the slot is already its own.
        assert pool.in_use == 1
        with pytest.raises(trio.WouldBlock):
            pool.acquire_nowait()
    assert log == ["waiter"]


async def test_minimum_share_interleaves_a_low_class() -> None:
    # With "low" owed a quarter of the grants, it is served every 4th grant however many high
    # requests queue: at most ceil(1 / 0.25) - 1 = 3 grants in a row go to "high".
    pool = PriorityPool(1, classes={"high": 0.0, "low": 0.25})
    log: list[str] = []
    holder = pool.acquire_nowait(priority="high")
    async with trio.open_nursery() as nursery:
        requests = [(f"h{i}", {"priority": "high"}) for i in range(9)]
        requests += [(f"l{i}", {"priority": "low"}) for i in range(3)]
        await queue_up(nursery, pool, log, *requests)
        holder.release()
    assert [name[0] for name in log] == list("hhhlhhhlhhhl")
    stats = pool.statistics().classes
    assert stats["low"].longest_run == 3 == stats["low"].run_bound
    assert stats["low"].share == pytest.approx(3 / 13)  # the first holder was a grant too


async def test_round_robin_between_owners() -> None:
    pool = PriorityPool(1)
    log: list[str] = []
    holder = pool.acquire_nowait()
    async with trio.open_nursery() as nursery:
        await queue_up(
            nursery,
            pool,
            log,
            *[(f"a{i}", {"owner": "actor-a"}) for i in range(4)],
            ("b0", {"owner": "actor-b"}),
            ("c0", {"owner": "actor-c"}),
            ("b1", {"owner": "actor-b"}),
        )
        holder.release()
    assert log == ["a0", "b0", "c0", "a1", "b1", "a2", "a3"]


# -- weights -------------------------------------------------------------------------------------


async def test_heavy_request_gathers_slots_and_is_not_bypassed() -> None:
    pool = PriorityPool(4)
    log: list[str] = []
    small = [pool.acquire_nowait() for _ in range(3)]
    async with trio.open_nursery() as nursery:
        await queue_up(
            nursery,
            pool,
            log,
            ("heavy", {"weight": 3, "owner": "x"}),
            ("light", {"weight": 1, "owner": "y"}),
        )
        small[0].release()
        await wait_all_tasks_blocked()
        # Two slots are free, but the heavy request needs three and nothing passes it.
        assert log == []
        assert pool.in_use == 2
        with pytest.raises(trio.WouldBlock):
            pool.acquire_nowait(owner="z")
        small[1].release()
        await wait_all_tasks_blocked()
        assert log == ["heavy", "light"]
        small[2].release()


# -- capacity and cancellation -------------------------------------------------------------------


async def test_a_cancelled_waiter_changes_no_accounting(autojump_clock: MockClock) -> None:
    async def scenario(with_quitter: bool) -> tuple[list[str], list[tuple[int, int, int]]]:
        pool = PriorityPool(1, classes=THREE)
        log: list[str] = []
        holder = pool.acquire_nowait(priority="high")
        async with trio.open_nursery() as nursery:
            requests = [(f"{c}{i}", {"priority": c}) for i in range(6) for c in THREE]
            await queue_up(nursery, pool, log, *requests[:9])
            if with_quitter:
                quitter = trio.CancelScope()

                async def quits() -> None:
                    with quitter:
                        await take(pool, log, "quitter", priority="low")

                nursery.start_soon(quits)
                await wait_all_tasks_blocked()
                assert pool.waiting == 10
                quitter.cancel()
                await wait_all_tasks_blocked()
            await queue_up(nursery, pool, log, *requests[9:])
            holder.release()
        stats = pool.statistics().classes.values()
        return log, [(c.grants, c.longest_run, c.cancellations) for c in stats]

    plain_log, plain_stats = await scenario(with_quitter=False)
    log, stats = await scenario(with_quitter=True)
    assert log == plain_log
    assert "quitter" not in log
    assert [s[:2] for s in stats] == [s[:2] for s in plain_stats]
    assert [s[2] for s in stats] == [0, 0, 1]


async def test_a_grant_racing_a_cancellation_is_passed_on() -> None:
    pool = PriorityPool(1)
    log: list[str] = []
    holder = pool.acquire_nowait()
    racer = trio.CancelScope()

    async def races() -> None:
        with racer:
            await take(pool, log, "racer", owner="r")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(races)
        await wait_all_tasks_blocked()
        await queue_up(nursery, pool, log, ("next", {"owner": "n"}))
        holder.release()  # grants the racer...
        racer.cancel()  # ...which is cancelled in the same instant
        assert pool.in_use == 1
    assert log == ["next"]
    assert racer.cancelled_caught
    stats = pool.statistics()
    assert stats.grants == 3
    assert stats.classes["default"].cancellations == 1
    assert pool.in_use == 0


# -- load shedding -------------------------------------------------------------------------------


async def test_pool_overloaded_at_max_waiting(autojump_clock: MockClock) -> None:
    pool = PriorityPool(1, classes=THREE, max_waiting={"low": 2, "high": 0})
    log: list[str] = []
    holder = pool.acquire_nowait(priority="mid")
    async with trio.open_nursery() as nursery:
        await queue_up(nursery, pool, log, ("l1", {"priority": "low"}), ("l2", {"priority": "low"}))
        start = trio.current_time()
        with trio.fail_after(1):  # refused at once, never queued
            with pytest.raises(PoolOverloaded, match="'low' already has 2 waiters"):
                async with pool.acquire(priority="low"):
                    pass  # pragma: no cover
            with pytest.raises(PoolOverloaded, match="'high' already has 0 waiters"):
                async with pool.acquire(priority="high"):
                    pass  # pragma: no cover
        assert trio.current_time() == start
        await queue_up(nursery, pool, log, ("m1", {"priority": "mid"}))  # mid is unlimited
        assert pool.waiting == 3
        holder.release()
    assert log == ["m1", "l1", "l2"]
    stats = pool.statistics().classes
    assert (stats["low"].rejections, stats["high"].rejections, stats["mid"].rejections) == (1, 1, 0)
    # max_waiting=0 still lets a request in when it need not wait.
    async with pool.acquire(priority="high") as lease:
        assert lease.priority == "high"


async def test_max_waiting_as_int_applies_to_every_class(autojump_clock: MockClock) -> None:
    pool = PriorityPool(1, classes=THREE, max_waiting=1)
    holder = pool.acquire_nowait()
    log: list[str] = []
    async with trio.open_nursery() as nursery:
        await queue_up(nursery, pool, log, *[(c, {"priority": c}) for c in THREE])
        for cls in THREE:
            with trio.fail_after(1), pytest.raises(PoolOverloaded):
                async with pool.acquire(priority=cls):
                    pass  # pragma: no cover
        holder.release()
    assert log == ["high", "mid", "low"]


# -- preemption ----------------------------------------------------------------------------------


async def test_preemption_fires_only_after_preempt_after(autojump_clock: MockClock) -> None:
    pool = PriorityPool(1, classes=THREE, preempt_after=1.5)
    leases: list[Lease] = []
    high_granted: list[float] = []

    async def low_worker() -> None:
        async with pool.acquire(priority="low", preemptible=True) as lease:
            leases.append(lease)
            await trio.sleep_forever()

    async def high_worker() -> None:
        async with pool.acquire(priority="high"):
            high_granted.append(trio.current_time())

    with trio.fail_after(60):  # without preemption this would wait for ever
        async with trio.open_nursery() as nursery:
            nursery.start_soon(low_worker)
            await trio.sleep(1.0)
            start = trio.current_time()
            nursery.start_soon(high_worker)
            await trio.sleep(1.49)
            assert [lease.preempted for lease in leases] == [False]
            assert high_granted == []
            await trio.sleep(0.02)
    assert [lease.preempted for lease in leases] == [True]
    assert high_granted == [pytest.approx(start + 1.5)]
    stats = pool.statistics()
    assert (stats.preemptions, stats.classes["low"].preemptions) == (1, 1)


async def test_only_lower_preemptible_leases_from_before_arrival_are_preempted(
    autojump_clock: MockClock,
) -> None:
    pool = PriorityPool(3, classes=THREE, preempt_after=1.0)
    held: dict[str, Lease] = {}

    async def hold(name: str, **kwargs: Any) -> None:
        async with pool.acquire(**kwargs) as lease:
            held[name] = lease
            await trio.sleep(10.0)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: hold("fixed", priority="low"))
        nursery.start_soon(lambda: hold("high", priority="high", preemptible=True))
        nursery.start_soon(lambda: hold("low", priority="low", preemptible=True))
        await wait_all_tasks_blocked()
        # A mid request for two slots waits; after 1 s it may preempt only the preemptible low
        # lease, never the high one, and then waits for a second slot.
        nursery.start_soon(lambda: hold("mid", priority="mid", weight=2))
        await trio.sleep(5.0)
        assert held["low"].preempted
        assert not held["high"].preempted
        assert not held["fixed"].preempted
        assert "mid" not in held
        assert pool.in_use == 2
    assert held["mid"].granted_at == pytest.approx(10.0)
    assert pool.statistics().preemptions == 1


async def test_preempted_holder_requeues_its_work(autojump_clock: MockClock) -> None:
    pool = PriorityPool(1, classes=THREE, preempt_after=0.5)
    attempts = 0
    done_at: dict[str, float] = {}

    async def batch() -> None:
        nonlocal attempts
        while True:
            attempts += 1
            async with pool.acquire(priority="low", preemptible=True) as lease:
                await trio.sleep(2.0)
            if not lease.preempted:
                done_at["batch"] = trio.current_time()
                return

    async def urgent() -> None:
        await trio.sleep(0.1)
        async with pool.acquire(priority="high"):
            await trio.sleep(0.2)
        done_at["urgent"] = trio.current_time()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(batch)
        nursery.start_soon(urgent)
    assert attempts == 2
    assert done_at["urgent"] == pytest.approx(0.8)
    assert done_at["batch"] == pytest.approx(2.8)


def test_preemption_victims_rule() -> None:
    def lease(index: int, seq: int, preemptible: bool = True) -> Lease:
        return Lease(
            lambda _: None,
            priority=f"c{index}",
            index=index,
            weight=1,
            owner=None,
            granted_at=0.0,
            waited=0.0,
            seq=seq,
            preemptible=preemptible,
        )

    leases = [  # in grant order, as the pool keeps them
        lease(1, 1),
        lease(2, 2),  # lowest class, oldest: the first victim
        lease(2, 3),
        lease(1, 4, preemptible=False),  # never
        lease(0, 5),  # not lower than a class-0 or class-1 waiter
        lease(1, 6),  # same class as a class-1 waiter
        lease(2, 20),  # granted after the waiter arrived
    ]
    leases[2].preempt()  # already preempted
    waiter = Waiter(None, 1, 1, "w", False, 10, 0.0)  # type: ignore[arg-type]
    assert [(v.index, v.seq) for v in victims(leases, waiter)] == [(2, 2)]
    waiter = Waiter(None, 0, 1, "w", False, 10, 0.0)  # type: ignore[arg-type]
    assert [(v.index, v.seq) for v in victims(leases, waiter)] == [(2, 2), (1, 1), (1, 6)]


# -- rate gate -----------------------------------------------------------------------------------


async def test_nobody_holds_a_slot_while_waiting_for_tokens(autojump_clock: MockClock) -> None:
    pool = PriorityPool(2, rate=1.0, burst=1)
    log: list[str] = []
    async with pool.acquire():
        pass
    start = trio.current_time()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: take(pool, log, "second"))
            await trio.sleep(0.5)
            assert log == []
            assert pool.in_use == 0
            assert pool.waiting == 1
            assert pool.statistics().tokens == pytest.approx(0.5)
            with pytest.raises(trio.WouldBlock):
                pool.acquire_nowait()
    assert log == ["second"]
    assert trio.current_time() == pytest.approx(start + 1.0)


async def test_rate_gate_wakes_the_next_target_when_the_first_leaves(
    autojump_clock: MockClock,
) -> None:
    pool = PriorityPool(1, classes=THREE, rate=1.0, burst=1)
    log: list[str] = []
    with trio.fail_after(10):  # a missed wake-up would otherwise block for ever
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: take(pool, log, "mid", 0.2, priority="mid"))
            await wait_all_tasks_blocked()
            # "low" waits for the slot (not for tokens), so it sleeps with no timer.
            await queue_up(nursery, pool, log, ("low", {"priority": "low"}))
            quitter = trio.CancelScope()

            async def quits() -> None:
                with quitter:
                    await take(pool, log, "high", priority="high")

            nursery.start_soon(quits)
            await trio.sleep(0.5)
            # At 0.2 the slot came back to "high", which now waits for a token; it leaves, and
            # "low" becomes the one waiting for the token: the pool must wake it at 1.0.
            assert pool.in_use == 0
            quitter.cancel()
    assert log == ["mid", "low"]
    assert trio.current_time() == pytest.approx(1.0)


# -- context and introspection -------------------------------------------------------------------


async def test_priority_and_owner_flow_from_the_actor_context() -> None:
    pool = PriorityPool(1, classes=THREE, default_priority="mid")
    async with pool.acquire() as lease:
        assert lease.priority == "mid"
        assert lease.owner is trio.lowlevel.current_task()
    assert PriorityPool(1, classes=THREE).acquire_nowait().priority == "low"
    token = default_priority.set("high")
    owner_token = default_owner.set("actor-a")
    try:
        async with pool.acquire() as lease:
            assert (lease.priority, lease.owner) == ("high", "actor-a")
        async with pool.acquire(priority="low", owner="x") as lease:
            assert (lease.priority, lease.owner) == ("low", "x")
        default_priority.set("urgent")
        with pytest.raises(ValueError, match="default priority 'urgent' is not a class"):
            pool.acquire()
    finally:
        default_priority.reset(token)
        default_owner.reset(owner_token)


async def test_an_actors_fan_out_shares_one_turn() -> None:
    pool = PriorityPool(1)
    log: list[str] = []
    holder = pool.acquire_nowait()

    async def actor(name: str, fan_out: int, nursery: trio.Nursery) -> None:
        default_owner.set(name)  # what the runtime does in each actor's task
        for i in range(fan_out):
            nursery.start_soon(take, pool, log, f"{name}{i}")
            await wait_all_tasks_blocked()

    async with trio.open_nursery() as nursery:
        await actor("a", 3, nursery)
        await actor("b", 1, nursery)
        holder.release()
    assert log == ["a0", "b0", "a1", "a2"]


async def test_statistics_and_repr(autojump_clock: MockClock) -> None:
    pool = PriorityPool(2, classes=THREE, rate=100.0, burst=5)
    assert repr(pool) == "<PriorityPool 0/2 in use, 0 waiting>"
    first = pool.acquire_nowait(priority="high")
    await trio.sleep(1.0)
    async with trio.open_nursery() as nursery:
        second = pool.acquire_nowait(priority="mid")
        nursery.start_soon(lambda: take(pool, [], "low", 0.0, priority="low"))
        await trio.sleep(0.5)
        assert repr(pool) == "<PriorityPool 2/2 in use, 1 waiting>"
        stats = pool.statistics()
        assert (stats.capacity, stats.in_use, stats.waiting, stats.leases) == (2, 2, 1, 2)
        assert stats.longest_hold == pytest.approx(1.5)
        assert stats.utilisation == pytest.approx((1.5 + 0.5) / (2 * 1.5))
        assert stats.tokens == pytest.approx(5.0)
        low = stats.classes["low"]
        assert (low.waiting, low.oldest_wait, low.grants, low.min_share) == (1, 0.5, 0, 0.1)
        assert stats.classes["high"].holding == 1
        await trio.sleep(0.5)
        first.release()
    second.release()
    stats = pool.statistics()
    low = stats.classes["low"]
    assert low.wait_p50 == low.wait_p99 == low.wait_max == pytest.approx(1.0)
    assert low.share == pytest.approx(1 / 3)
    assert low.run_bound == 10
    assert list(stats.classes) == ["high", "mid", "low"]
    assert (stats.grants, stats.in_use, stats.classes["high"].oldest_wait) == (3, 0, 0.0)
    with pytest.raises(TypeError):
        stats.classes["x"] = low  # type: ignore[index]
    assert "Lease high x1 released" in repr(first)
