"""PriorityPool properties checked with hypothesis: capacity, order, cancellation, rate.

Each example runs in its own ``trio.run`` under ``MockClock(autojump_threshold=0)``, with an
hour of mock time as a deadlock guard.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from contextlib import nullcontext

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from trio.testing import MockClock, wait_all_tasks_blocked

from triactor.pools import PriorityPool

THREE = {"high": 0.0, "mid": 0.2, "low": 0.1}


def run_mock(fn: Callable[[], Awaitable[None]]) -> None:
    """Run ``fn`` in a fresh trio.run with an autojumping mock clock; fail on deadlock."""

    async def guarded() -> None:
        with trio.fail_after(3600):
            await fn()

    trio.run(guarded, clock=MockClock(autojump_threshold=0))


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.sampled_from(list(THREE))), min_size=1, max_size=30)
)
def test_fifo_within_a_class_for_each_owner(arrivals: list[tuple[int, str]]) -> None:
    granted: list[tuple[int, int]] = []

    async def main() -> None:
        pool = PriorityPool(2, classes=THREE)
        holders = [pool.acquire_nowait(), pool.acquire_nowait()]

        async def one(number: int, owner: int, cls: str) -> None:
            async with pool.acquire(priority=cls, owner=owner) as lease:
                granted.append((lease.seq, number))  # grant order, not wake-up order
                await trio.sleep(0.001 * (number % 3 + 1))

        async with trio.open_nursery() as nursery:
            for number, (owner, cls) in enumerate(arrivals):
                nursery.start_soon(one, number, owner, cls)
                await wait_all_tasks_blocked()
            for lease in holders:
                lease.release()
        assert pool.in_use == 0

    run_mock(main)
    order = [number for _, number in sorted(granted)]
    assert sorted(order) == list(range(len(arrivals)))
    for owner in range(4):
        for cls in THREE:
            mine = [n for n in order if arrivals[n] == (owner, cls)]
            assert mine == sorted(mine)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=25), st.randoms(use_true_random=False))
def test_weights_are_never_bypassed(weights: list[int], rnd: random.Random) -> None:
    # One owner, one class: grants must follow arrival order whatever the weights, and the slots
    # in use never exceed the capacity.
    granted: list[tuple[int, int]] = []
    holds = [rnd.uniform(0.001, 0.05) for _ in weights]

    async def main() -> None:
        pool = PriorityPool(4)
        blocker = pool.acquire_nowait(weight=4)
        used = 0

        async def one(number: int, weight: int) -> None:
            nonlocal used
            async with pool.acquire(weight=weight, owner="me") as lease:
                used += weight
                assert used <= 4
                granted.append((lease.seq, number))
                await trio.sleep(holds[number])
                used -= weight

        async with trio.open_nursery() as nursery:
            for number, weight in enumerate(weights):
                nursery.start_soon(one, number, weight)
                await wait_all_tasks_blocked()
            blocker.release()
        assert pool.in_use == 0

    run_mock(main)
    assert [number for _, number in sorted(granted)] == list(range(len(weights)))


@st.composite
def _storm(draw: st.DrawFn) -> list[tuple[float, str, int, float, float | None]]:
    rnd = draw(st.randoms(use_true_random=False))
    count = draw(st.integers(20, 200))
    requests = []
    for _ in range(count):
        cancel_after = rnd.uniform(0.001, 0.5) if rnd.random() < 0.2 else None
        requests.append(
            (
                rnd.uniform(0.0, 1.0),  # arrival
                rnd.choice(list(THREE)),
                rnd.choice([1, 1, 1, 2, 3]),
                rnd.uniform(0.005, 0.05),  # hold
                cancel_after,
            )
        )
    return requests


def _run_storm(
    requests: list[tuple[float, str, int, float, float | None]], gated: bool
) -> tuple[int, int]:
    """Run a storm of requests, some cancelled; check nothing leaked; return grants, cancelled."""
    counts: list[int] = []

    async def main() -> None:
        pool = PriorityPool(
            4,
            classes=THREE,
            preempt_after=0.02,
            rate=200.0 if gated else None,
            burst=4 if gated else None,
        )
        used = 0
        entered = 0
        cancelled_waiting = 0
        not_cancelled = sum(1 for r in requests if r[4] is None)
        completed = 0

        async def one(
            arrival: float, cls: str, weight: int, hold: float, cancel: float | None
        ) -> None:
            nonlocal used, entered, cancelled_waiting, completed
            await trio.sleep(arrival)
            inside = False
            with trio.move_on_after(cancel) if cancel is not None else nullcontext():
                async with pool.acquire(priority=cls, weight=weight, preemptible=cls == "low"):
                    inside = True
                    entered += 1
                    used += weight
                    assert used <= pool.capacity
                    assert pool.in_use <= pool.capacity
                    try:
                        await trio.sleep(hold)
                    finally:
                        used -= weight
                if cancel is None:
                    completed += 1
            if not inside:
                cancelled_waiting += 1

        async with trio.open_nursery() as nursery:
            for request in requests:
                nursery.start_soon(one, *request)
        stats = pool.statistics()
        assert (pool.in_use, pool.waiting, stats.leases) == (0, 0, 0)
        assert sum(c.holding for c in stats.classes.values()) == 0
        assert completed == not_cancelled
        # A grant that raced its waiter's cancellation was passed on: counted as a grant and as
        # a cancellation, never entered. Every other cancelled waiter took no slot.
        passed_on = stats.grants - entered
        assert passed_on >= 0
        cancellations = sum(c.cancellations for c in stats.classes.values())
        assert cancellations == cancelled_waiting + passed_on
        counts.extend([stats.grants, cancellations])

    run_mock(main)
    return counts[0], counts[1]


@settings(max_examples=25, deadline=None)
@given(_storm(), st.booleans())
def test_storm_with_cancellations_leaks_nothing(
    requests: list[tuple[float, str, int, float, float | None]], gated: bool
) -> None:
    _run_storm(requests, gated)


@pytest.mark.parametrize("gated", [False, True])
def test_storm_of_200_cancelling_a_fifth(gated: bool) -> None:
    rnd = random.Random(7)
    requests: list[tuple[float, str, int, float, float | None]] = [
        (
            rnd.uniform(0.0, 1.0),
            rnd.choice(list(THREE)),
            rnd.choice([1, 1, 1, 2, 3]),
            rnd.uniform(0.005, 0.05),
            rnd.uniform(0.001, 0.5) if i % 5 == 0 else None,
        )
        for i in range(200)
    ]
    grants, cancelled = _run_storm(requests, gated)
    assert grants >= 160
    assert cancelled >= 10  # most of the 40 cancellations hit waiting requests


@settings(max_examples=30, deadline=None)
@given(
    st.floats(1.0, 50.0),
    st.integers(1, 5),
    st.lists(st.floats(0.0, 2.0), min_size=1, max_size=60),
)
def test_rate_gate_never_exceeds_its_rate(rate: float, burst: int, arrivals: list[float]) -> None:
    grants: list[float] = []

    async def main() -> None:
        pool = PriorityPool(8, classes=THREE, rate=rate, burst=burst)

        async def one(arrival: float, number: int) -> None:
            await trio.sleep(arrival)
            async with pool.acquire(priority=list(THREE)[number % 3]):
                grants.append(trio.current_time())
                await trio.sleep(0.01)

        async with trio.open_nursery() as nursery:
            for number, arrival in enumerate(arrivals):
                nursery.start_soon(one, arrival, number)

    run_mock(main)
    assert len(grants) == len(arrivals)
    grants.sort()
    for i, start in enumerate(grants):
        for j in range(i, len(grants)):
            window = grants[j] - start
            assert j - i + 1 <= burst + rate * window + 1e-6


def test_lease_preempt_requires_preemptible() -> None:
    async def main() -> None:
        pool = PriorityPool(1)
        lease = pool.acquire_nowait()
        with pytest.raises(RuntimeError, match="preemptible=True"):
            lease.preempt()
        lease.release()
        with pytest.raises(RuntimeError, match="already released"):
            lease.release()

    run_mock(main)
