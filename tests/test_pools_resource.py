"""ResourcePool: reuse, health checks, replacement, shutdown, and no leaks under cancellation."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from trio.testing import MockClock, wait_all_tasks_blocked

from triactor import PoolOverloaded
from triactor.pools import ResourcePool


class Conn:
    """A fake connection that knows whether it is healthy and whether it was closed."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.healthy = True
        self.closed = 0
        self.users = 0

    async def aclose(self) -> None:
        await trio.sleep(0.001)
        self.closed += 1

    def __repr__(self) -> str:
        return f"<Conn {self.number}>"


class Factory:
    """Makes numbered connections, optionally slowly, and remembers all of them."""

    def __init__(self, delay: float = 0.0) -> None:
        self.made: list[Conn] = []
        self.delay = delay
        self._numbers = itertools.count()

    async def __call__(self) -> Conn:
        if self.delay:
            await trio.sleep(self.delay)
        conn = Conn(next(self._numbers))
        self.made.append(conn)
        return conn


async def is_healthy(conn: Conn) -> bool:
    await trio.sleep(0.001)
    return conn.healthy


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"capacity": 0}, ValueError, "capacity must be at least 1"),
        ({"classes": {"a": 0.6, "b": 0.6}}, ValueError, "sum to 1.2"),
        ({"close_timeout": 0}, ValueError, "close_timeout must be"),
        ({"factory": "connect"}, TypeError, "factory must be an async function"),
        ({"check": 3}, TypeError, "check must be an async function"),
        ({"max_waiting": -1}, ValueError, "max_waiting must be at least 0"),
    ],
)
def test_invalid_configuration(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    args: dict[str, Any] = {"factory": Factory(), "capacity": 2} | kwargs
    with pytest.raises(error, match=match):
        ResourcePool(**args)


async def test_unknown_class_fails_at_the_call() -> None:
    pool = ResourcePool(Factory(), 2, classes={"high": 0.0, "low": 0.5})
    with pytest.raises(ValueError, match="'urgent' is not a class"):
        pool.acquire(priority="urgent")


async def test_objects_are_reused_and_bounded_by_capacity(autojump_clock: MockClock) -> None:
    factory = Factory()
    async with ResourcePool(factory, 3) as pool:
        busy = 0

        async def user(hold: float) -> None:
            nonlocal busy
            async with pool.acquire() as conn:
                conn.users += 1
                busy += 1
                assert busy <= 3
                await trio.sleep(hold)
                busy -= 1

        async with trio.open_nursery() as nursery:
            for i in range(20):
                nursery.start_soon(user, 0.01 * (i % 4 + 1))
        assert len(factory.made) == 3
        assert sum(c.users for c in factory.made) == 20
        stats = pool.statistics()
        assert (stats.size, stats.idle, stats.in_use, stats.created) == (3, 3, 0, 3)
        assert stats.pool.grants == 20


async def test_priority_decides_who_gets_the_next_object(autojump_clock: MockClock) -> None:
    pool = ResourcePool(Factory(), 1, classes={"high": 0.0, "low": 0.0})
    log: list[str] = []
    release = trio.Event()

    async def user(name: str, priority: str) -> None:
        async with pool.acquire(priority=priority):
            log.append(name)
            if name == "first":
                await release.wait()

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for name, priority in [("first", "low"), ("low1", "low"), ("high1", "high")]:
                nursery.start_soon(user, name, priority)
                await wait_all_tasks_blocked()
            release.set()
    assert log == ["first", "high1", "low1"]
    await pool.aclose()


async def test_health_check_replaces_broken_objects(autojump_clock: MockClock) -> None:
    factory = Factory()
    async with ResourcePool(factory, 2, check=is_healthy) as pool:
        async with pool.acquire() as first:
            pass
        first.healthy = False
        async with pool.acquire() as second:
            assert second is not first
        assert first.closed == 1
        async with pool.acquire() as third:
            assert third is second
        assert pool.statistics().broken == 1


async def test_a_check_that_raises_means_broken(
    autojump_clock: MockClock, log_records: list[dict[str, object]]
) -> None:
    async def explode(conn: Conn) -> bool:
        raise ConnectionResetError("gone")

    factory = Factory()
    async with ResourcePool(factory, 1, check=explode) as pool:
        async with pool.acquire():
            pass
        async with pool.acquire() as conn:
            assert conn.number == 1
        assert factory.made[0].closed == 1
    assert any("health check" in str(r["message"]) for r in log_records)


async def test_discarded_objects_are_closed_and_replaced(autojump_clock: MockClock) -> None:
    factory = Factory()
    async with ResourcePool(factory, 1) as pool:
        async with pool.acquire() as conn:
            pool.discard(conn)
            assert conn.closed == 0
        assert conn.closed == 1
        async with pool.acquire() as fresh:
            assert fresh is not conn
        with pytest.raises(ValueError, match="not lent out"):
            pool.discard(fresh)
        stats = pool.statistics()
        assert (stats.created, stats.closed, stats.broken) == (2, 1, 1)


async def test_discard_on_error(autojump_clock: MockClock) -> None:
    factory = Factory()
    async with ResourcePool(factory, 1, discard_on_error=True) as pool:
        with pytest.raises(KeyError):
            async with pool.acquire() as conn:
                raise KeyError("query failed")
        assert conn.closed == 1
        async with pool.acquire() as fresh:
            assert fresh is not conn
    kept = Factory()
    async with ResourcePool(kept, 1) as pool:
        with pytest.raises(KeyError):
            async with pool.acquire() as conn:
                raise KeyError("query failed")
        async with pool.acquire() as again:
            assert again is conn


async def test_shutdown_closes_every_object(autojump_clock: MockClock) -> None:
    factory = Factory()
    pool = ResourcePool(factory, 3)
    release = trio.Event()

    async def holder() -> None:
        async with pool.acquire():
            await release.wait()

    async with trio.open_nursery() as nursery:
        async with pool.acquire(), pool.acquire():
            pass
        nursery.start_soon(holder)
        await wait_all_tasks_blocked()
        assert pool.statistics().idle == 1
        await pool.aclose()
        lent = [c for c in factory.made if not c.closed]
        assert len(lent) == 1  # the idle ones are closed; the lent one on return
        with pytest.raises(trio.ClosedResourceError):
            async with pool.acquire():
                pass  # pragma: no cover
        release.set()
    assert all(c.closed == 1 for c in factory.made)
    assert pool.statistics().size == 0
    await pool.aclose()  # closing twice does nothing more
    assert "closed" in repr(pool)


async def test_waiters_find_the_pool_closed(autojump_clock: MockClock) -> None:
    pool = ResourcePool(Factory(), 1)
    outcome: list[str] = []

    async def waiter() -> None:
        try:
            async with pool.acquire():
                outcome.append("got")  # pragma: no cover
        except trio.ClosedResourceError:
            outcome.append("closed")

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery, pool.acquire():
            nursery.start_soon(waiter)
            await wait_all_tasks_blocked()
            await pool.aclose()
    assert outcome == ["closed"]
    assert pool.pool.in_use == 0


async def test_factory_failure_releases_the_slot(autojump_clock: MockClock) -> None:
    calls = 0

    async def flaky() -> Conn:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("connection refused")
        return Conn(calls)

    async with ResourcePool(flaky, 1) as pool:
        with pytest.raises(OSError, match="refused"):
            async with pool.acquire():
                pass  # pragma: no cover
        assert pool.pool.in_use == 0
        async with pool.acquire() as conn:
            assert conn.number == 2


async def test_close_errors_are_counted_and_logged(
    autojump_clock: MockClock, log_records: list[dict[str, object]]
) -> None:
    async def bad_close(conn: Conn) -> None:
        raise RuntimeError("socket already dead")

    async def slow_close(conn: Conn) -> None:
        await trio.sleep(100)

    for close, expected in [(bad_close, "could not close"), (slow_close, "gave up closing")]:
        pool = ResourcePool(Factory(), 1, close=close, close_timeout=1.0)
        async with pool.acquire():
            pass
        await pool.aclose()
        assert pool.statistics().close_errors == 1
        assert any(expected in str(r["message"]) for r in log_records)


async def test_overloaded_resource_pool_sheds_load(autojump_clock: MockClock) -> None:
    pool = ResourcePool(Factory(), 1, max_waiting=0)
    async with pool.acquire():
        with trio.fail_after(1), pytest.raises(PoolOverloaded):
            async with pool.acquire():
                pass  # pragma: no cover
    await pool.aclose()


async def test_sync_close_methods_are_used_by_default(autojump_clock: MockClock) -> None:
    class SyncConn:
        closed = False

        def close(self) -> None:
            self.closed = True

    async def make() -> SyncConn:
        return SyncConn()

    async with ResourcePool(make, 1) as pool, pool.acquire() as conn:
        pass
    assert conn.closed


def _run_storm(seed: int, size: int) -> None:
    rnd = random.Random(seed)
    factory = Factory(delay=0.002)
    plan = [
        (
            rnd.uniform(0, 0.5),
            rnd.choice(["high", "low"]),
            rnd.uniform(0.001, 0.03),
            rnd.uniform(0.0005, 0.1) if rnd.random() < 0.3 else None,
            rnd.random() < 0.1,
        )
        for _ in range(size)
    ]

    async def main() -> None:
        async with ResourcePool(
            factory, 3, classes={"high": 0.0, "low": 0.3}, check=is_healthy
        ) as pool:
            lent: set[int] = set()

            async def user(
                start: float, priority: str, hold: float, cancel: float | None, breaks: bool
            ) -> None:
                await trio.sleep(start)
                with trio.move_on_after(cancel if cancel is not None else 1e9):
                    async with pool.acquire(priority=priority) as conn:
                        assert conn.number not in lent  # one holder at a time
                        assert not conn.closed
                        lent.add(conn.number)
                        try:
                            if breaks:
                                conn.healthy = False
                            await trio.sleep(hold)
                        finally:
                            lent.discard(conn.number)

            with trio.fail_after(3600):
                async with trio.open_nursery() as nursery:
                    for spec in plan:
                        nursery.start_soon(user, *spec)
            stats = pool.statistics()
            assert stats.in_use == 0
            assert stats.size <= 3
            assert stats.size == len([c for c in factory.made if not c.closed])
            assert stats.pool.in_use == 0
        # Every object ever made is closed exactly once: nothing leaked, nothing closed twice.
        assert [c.closed for c in factory.made] == [1] * len(factory.made)

    trio.run(main, clock=MockClock(autojump_threshold=0))


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32), st.integers(5, 120))
def test_cancellation_never_leaks_an_object(seed: int, size: int) -> None:
    _run_storm(seed, size)


def test_cancellation_storm_of_200() -> None:
    _run_storm(seed=11, size=200)
