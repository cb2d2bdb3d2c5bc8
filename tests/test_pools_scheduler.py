"""The pool's choice rule on its own: the documented starvation bound and the minimum shares."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from triactor.pools import PriorityPool
from triactor.pools._queue import Waiter
from triactor.pools._scheduler import Scheduler
from triactor.pools._shares import UNIT, parse_classes, starvation_bound, wait_bound


class _Task:
    """Stands in for a trio Task: the scheduler never touches it."""


def _waiter(index: int, owner: object, seq: int) -> Waiter:
    return Waiter(_Task(), index, 1, owner, False, seq, 0.0)  # type: ignore[arg-type]


def test_documented_example_bounds() -> None:
    pool = PriorityPool(4, classes={"high": 0.0, "mid": 0.2, "low": 0.1})
    assert [pool.starvation_bound(c) for c in pool.classes] == [2, 4, 10]
    assert pool.wait_bound("high", 0.050) == pytest.approx(0.050)
    assert pool.wait_bound("mid", 0.050) == pytest.approx(0.100)
    assert pool.wait_bound("low", 0.050) == pytest.approx(0.150)
    assert pool.wait_bound("low", 0.050, max_weight=2) == pytest.approx(11 * 0.050)


def test_bounds_of_classes_without_guarantee() -> None:
    strict = [0, 0, 0]
    assert starvation_bound(strict, 0) == 0
    assert starvation_bound(strict, 1) is None
    full = parse_classes({"top": 0.0, "a": 0.5, "b": 0.5})
    assert starvation_bound([u for _, u in full], 0) is None
    assert wait_bound(None, capacity=4, max_hold=1.0) == math.inf
    pool = PriorityPool(2, classes={"a": 0.0, "b": 0.0})
    assert pool.starvation_bound("b") is None
    assert pool.wait_bound("b", 1.0) == math.inf


def test_wait_bound_with_rate_gate() -> None:
    pool = PriorityPool(4, classes={"high": 0.0, "low": 0.5}, rate=10.0, burst=2)
    bound = pool.starvation_bound("low")
    assert bound == 1
    assert pool.wait_bound("low", 0.2) == pytest.approx((bound + 1) * (0.2 + 0.1))


# Round fractions line credits up the way real configurations do, which is where the bound is
# reached; arbitrary millionths cover the rest.
_share = st.one_of(
    st.sampled_from([0, UNIT // 10, UNIT // 5, UNIT // 4, 3 * UNIT // 10, UNIT // 2]),
    st.integers(min_value=0, max_value=UNIT),
)
_shares = st.lists(_share, min_size=1, max_size=5).filter(lambda units: sum(units) <= UNIT)


@st.composite
def _scenario(draw: st.DrawFn) -> tuple[list[int], list[tuple[str, int, int]]]:
    units = draw(_shares)
    classes = st.integers(min_value=0, max_value=len(units) - 1)
    owners = st.integers(min_value=0, max_value=3)
    # Mostly closed-loop traffic (a served request comes back), which keeps classes waiting
    # for long stretches, with arrivals and cancellations mixed in.
    kinds = ["grant+requeue"] * 8 + ["grant", "arrive", "cancel"]
    op = st.tuples(st.sampled_from(kinds), classes, owners)
    prefill = draw(st.lists(st.tuples(st.just("arrive"), classes, owners), max_size=20))
    return units, prefill + draw(st.lists(op, min_size=1, max_size=300))


@settings(max_examples=400, deadline=None)
@given(_scenario())
def test_runs_never_exceed_the_documented_bound(
    scenario: tuple[list[int], list[tuple[str, int, int]]],
) -> None:
    units, ops = scenario
    sched = Scheduler([(f"c{i}", u) for i, u in enumerate(units)])
    waiting: list[Waiter] = []
    seq = 0

    def arrive(index: int, owner: int) -> None:
        nonlocal seq
        seq += 1
        waiter = _waiter(index, owner, seq)
        sched.enqueue(waiter)
        waiting.append(waiter)

    for op, index, owner in ops:
        if op == "arrive":
            arrive(index, owner)
        elif op.startswith("grant"):
            target = sched.target()
            if target is None:
                assert not waiting
                continue
            sched.take(target)
            waiting.remove(target)
            if op == "grant+requeue":
                arrive(target.index, target.owner)  # type: ignore[arg-type]
        elif waiting:
            victim = waiting.pop((index * 7 + owner) % len(waiting))
            sched.remove(victim)
        assert sched.waiting == len(waiting)
        for state in sched.classes:
            assert state.credit >= 0
            assert (state.credit == 0) or len(state.queue) > 0
            if state.bound is not None:
                assert state.longest_run <= state.bound, (units, state.name)


@settings(max_examples=100, deadline=None)
@given(_shares, st.integers(min_value=200, max_value=2000))
def test_backlogged_classes_get_their_minimum_share(units: list[int], grants: int) -> None:
    # Every class always has waiters; each gets at least share * grants, minus one grant of
    # slack for the credit it may still hold at the end.
    sched = Scheduler([(f"c{i}", u) for i, u in enumerate(units)])
    for seq in range(len(units) * 2):
        sched.enqueue(_waiter(seq % len(units), "owner", seq))
    for seq in range(grants):
        target = sched.target()
        assert target is not None
        sched.take(target)
        sched.enqueue(_waiter(target.index, "owner", 10_000 + seq))
    for state in sched.classes:
        assert state.grants >= state.units * grants / UNIT - len(units)


def test_bound_is_reached_when_every_class_is_backlogged() -> None:
    # The documented bound is exact for the example: closed-loop traffic in all three classes
    # reaches it, and the grant pattern repeats every 10 grants (7 high, 2 mid, 1 low).
    sched = Scheduler(parse_classes({"high": 0.0, "mid": 0.2, "low": 0.1}))
    seq = 0
    for index in (0, 1, 2):
        for _ in range(3):
            seq += 1
            sched.enqueue(_waiter(index, "owner", seq))
    order = []
    for _ in range(100):
        target = sched.target()
        assert target is not None
        sched.take(target)
        order.append(target.index)
        seq += 1
        sched.enqueue(_waiter(target.index, "owner", seq))
    assert [state.longest_run for state in sched.classes] == [2, 4, 10]
    assert [state.bound for state in sched.classes] == [2, 4, 10]
    steady = order[20:]
    assert all(steady[i] == steady[i + 10] for i in range(len(steady) - 10))
    assert [steady[:10].count(i) for i in (0, 1, 2)] == [7, 2, 1]


def test_round_robin_between_owners_fifo_within() -> None:
    sched = Scheduler([("only", 0)])
    arrivals = [("a", 1), ("a", 2), ("a", 3), ("b", 1), ("c", 1), ("b", 2)]
    for seq, (owner, _) in enumerate(arrivals):
        sched.enqueue(_waiter(0, owner, seq))
    order = []
    while (target := sched.target()) is not None:
        sched.take(target)
        order.append(arrivals[target.seq])
    assert order == [("a", 1), ("b", 1), ("c", 1), ("a", 2), ("b", 2), ("a", 3)]
