"""PriorityPool against trio.CapacityLimiter under the same closed-loop load.

Three classes (high, mid, low) of closed-loop agents, 60 / 100 / 40 of them, share 4 slots.
Each agent thinks for U(0.5, 1.5) s, asks for a slot, holds it for U(5, 50) ms, and repeats,
for 60 simulated seconds under ``MockClock(autojump_threshold=0)``. The offered load (about 5.4
slots) exceeds the capacity, so requests queue. Every agent draws its think and hold times from
its own seeded generator, so both pools see the same demand and the run is deterministic.

Run with ``python -m benchmarks.bench_pools``. It prints per class the wait p50 / p99 / max, the
share of grants, the longest run of grants to other classes while the class waited, and the
utilisation of each pool, then whether each target is met:

* the high class's p99 wait is at most 1/5 of the FIFO limiter's;
* every class receives at least 0.9x its minimum share;
* the longest run of grants to others stays within the documented bound;
* PriorityPool utilisation is at least 97%.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import attrs
import trio
from trio.testing import MockClock

from triactor.pools import PriorityPool

from ._table import print_table, verdict

SEED = 4
CAPACITY = 4
CLASSES = {"high": 0.0, "mid": 0.2, "low": 0.1}
AGENTS = {"high": 60, "mid": 100, "low": 40}
HOLD = (0.005, 0.050)
THINK = (0.5, 1.5)
DURATION = 60.0

Slot = Callable[[str], AbstractAsyncContextManager[object]]


@attrs.define
class Result:
    """What one run measured."""

    name: str
    waits: dict[str, list[float]] = attrs.Factory(lambda: {c: [] for c in CLASSES})
    waiting: dict[str, int] = attrs.Factory(lambda: dict.fromkeys(CLASSES, 0))
    run: dict[str, int] = attrs.Factory(lambda: dict.fromkeys(CLASSES, 0))
    longest_run: dict[str, int] = attrs.Factory(lambda: dict.fromkeys(CLASSES, 0))
    busy: float = 0.0
    bounds: dict[str, int | None] = attrs.Factory(dict)

    def granted(self, cls: str, wait: float) -> None:
        self.waits[cls].append(wait)
        for other in CLASSES:
            if other != cls and self.waiting[other]:
                self.run[other] += 1
                self.longest_run[other] = max(self.longest_run[other], self.run[other])
            else:
                self.run[other] = 0

    @property
    def grants(self) -> int:
        return sum(len(w) for w in self.waits.values())

    def share(self, cls: str) -> float:
        return len(self.waits[cls]) / self.grants

    def percentile(self, cls: str, fraction: float) -> float:
        ordered = sorted(self.waits[cls])
        return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]

    @property
    def utilisation(self) -> float:
        return self.busy / (CAPACITY * DURATION)


async def _agent(cls: str, number: int, slot: Slot, result: Result) -> None:
    rng = random.Random(f"{SEED}-{cls}-{number}")
    await trio.sleep(rng.uniform(0.0, THINK[1]))
    while True:
        result.waiting[cls] += 1
        asked = trio.current_time()
        async with slot(cls):
            now = trio.current_time()
            result.waiting[cls] -= 1
            result.granted(cls, now - asked)
            hold = rng.uniform(*HOLD)
            result.busy += max(0.0, min(now + hold, DURATION) - now)
            await trio.sleep(hold)
        await trio.sleep(rng.uniform(*THINK))


async def _drive(slot: Slot, result: Result) -> None:
    with trio.move_on_after(DURATION):
        async with trio.open_nursery() as nursery:
            for cls, count in AGENTS.items():
                for number in range(count):
                    nursery.start_soon(_agent, cls, number, slot, result)


async def _run_limiter() -> Result:
    limiter = trio.CapacityLimiter(CAPACITY)
    result = Result("CapacityLimiter")
    await _drive(lambda _cls: limiter, result)
    return result


async def _run_pool() -> tuple[Result, PriorityPool]:
    pool = PriorityPool(CAPACITY, classes=CLASSES)
    result = Result("PriorityPool")
    result.bounds = {cls: pool.starvation_bound(cls) for cls in CLASSES}
    await _drive(lambda cls: pool.acquire(priority=cls), result)
    return result, pool


def run() -> None:
    """Run both pools under the same load and print the table and the targets."""
    fifo = trio.run(_run_limiter, clock=MockClock(autojump_threshold=0))
    prio, pool = trio.run(_run_pool, clock=MockClock(autojump_threshold=0))
    stats = pool.statistics()

    rows: list[list[object]] = []
    for result in (fifo, prio):
        for cls, min_share in CLASSES.items():
            bound = prio.bounds[cls] if result is prio else None
            rows.append(
                [
                    result.name,
                    cls,
                    len(result.waits[cls]),
                    f"{result.share(cls):.3f}",
                    f"{min_share:.2f}",
                    f"{result.percentile(cls, 0.50) * 1000:.1f}",
                    f"{result.percentile(cls, 0.99) * 1000:.1f}",
                    f"{max(result.waits[cls]) * 1000:.1f}",
                    result.longest_run[cls],
                    "-" if bound is None else bound,
                    f"{result.utilisation:.1%}",
                ]
            )
    agents = " / ".join(str(n) for n in AGENTS.values())
    print_table(
        f"Pools: {sum(AGENTS.values())} closed-loop agents ({agents}), capacity {CAPACITY}, "
        f"hold U({HOLD[0] * 1000:g}, {HOLD[1] * 1000:g}) ms, think U({THINK[0]:g}, "
        f"{THINK[1]:g}) s, {DURATION:g} s simulated (run = longest run of grants to others)",
        [
            "pool",
            "class",
            "grants",
            "share",
            "min share",
            "wait p50 ms",
            "p99 ms",
            "max ms",
            "run",
            "bound",
            "utilisation",
        ],
        rows,
    )

    high_p99, fifo_p99 = prio.percentile("high", 0.99), fifo.percentile("high", 0.99)
    targets: list[list[object]] = [
        [
            "high p99 wait vs CapacityLimiter",
            f"{high_p99 / fifo_p99:.3f}x",
            "<= 0.2x",
            verdict(high_p99 <= fifo_p99 / 5),
        ]
    ]
    for cls, min_share in CLASSES.items():
        if min_share > 0:
            ratio = prio.share(cls) / min_share
            targets.append(
                [f"{cls} share / min share", f"{ratio:.2f}x", ">= 0.9x", verdict(ratio >= 0.9)]
            )
    for cls in CLASSES:
        bound = prio.bounds[cls]
        run_ok = bound is None or prio.longest_run[cls] <= bound
        same = stats.classes[cls].longest_run == prio.longest_run[cls]
        targets.append(
            [
                f"{cls} longest run{'' if same else ' (statistics() differs!)'}",
                prio.longest_run[cls],
                f"<= {bound}",
                verdict(run_ok and same),
            ]
        )
    targets.append(
        [
            "PriorityPool utilisation",
            f"{prio.utilisation:.1%}",
            ">= 97%",
            verdict(prio.utilisation >= 0.97),
        ]
    )
    print_table("Pools: targets", ["target", "measured", "goal", "verdict"], targets)


if __name__ == "__main__":
    run()
