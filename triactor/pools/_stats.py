"""What ``PriorityPool.statistics()`` returns, and the per-class counters behind it."""

from __future__ import annotations

import bisect
import itertools
import math
from collections import deque
from collections.abc import Mapping
from typing import final

import attrs

__all__ = [
    "WAIT_BUCKETS",
    "ClassRecorder",
    "ClassStatistics",
    "PoolStatistics",
    "WaitHistogram",
    "percentile",
]


@final
@attrs.frozen
class ClassStatistics:
    """A snapshot of one priority class of a :class:`~triactor.PriorityPool`.

    Wait times are in seconds. Percentiles cover the most recent ``stats_window`` grants of the
    class (1024 by default); counts and maxima cover the pool's whole life.
    """

    name: str
    """The class name."""
    priority: int
    """Position in priority order (0 is served first)."""
    min_share: float
    """The guaranteed minimum share of grants, as configured."""
    waiting: int
    """Requests of this class waiting now."""
    holding: int
    """Slots held now by leases of this class."""
    wait_p50: float
    """Median wait of recent grants (0.0 before the first grant)."""
    wait_p99: float
    """99th percentile wait of recent grants (nearest rank)."""
    wait_max: float
    """Longest wait of any grant so far."""
    oldest_wait: float
    """How long the oldest current waiter has waited (0.0 if none)."""
    grants: int
    """Grants so far."""
    share: float
    """This class's fraction of all grants so far (0.0 before the first grant)."""
    longest_run: int
    """The most grants in a row that went to other classes while this class waited."""
    run_bound: int | None
    """The documented ceiling on ``longest_run`` (None: this class has no guarantee)."""
    cancellations: int
    """Waiters that left without keeping a lease (cancelled while waiting, or granted in the
    same instant as their cancellation and so passed the grant on)."""
    rejections: int
    """Requests refused with ``PoolOverloaded`` because ``max_waiting`` was reached."""
    preemptions: int
    """Leases of this class that the pool preempted."""


@final
@attrs.frozen
class PoolStatistics:
    """A snapshot of a :class:`~triactor.PriorityPool`, returned by its ``statistics()``."""

    capacity: int
    """Total slots."""
    in_use: int
    """Slots held now."""
    waiting: int
    """Requests waiting now, all classes."""
    leases: int
    """Leases held now (a lease of weight k holds k slots)."""
    grants: int
    """Grants so far, all classes."""
    utilisation: float
    """Fraction of slot-time in use since the first request (0.0 until time has passed)."""
    longest_hold: float
    """How long the oldest current lease has been held (0.0 if none)."""
    tokens: float | None
    """Tokens in the rate gate now (None if the pool has no rate gate)."""
    preemptions: int
    """Leases preempted so far, all classes."""
    classes: Mapping[str, ClassStatistics]
    """Per-class statistics by name, in priority order."""


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list; 0.0 for an empty one."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


#: Upper bounds (seconds) of the wait histogram buckets (``PriorityPool._wait_histograms``).
WAIT_BUCKETS: tuple[float, ...] = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)


@final
@attrs.frozen
class WaitHistogram:
    """The waits of one priority class over the pool's whole life, in fixed buckets.

    The shape of a Prometheus histogram.

    Attributes:
        buckets: (upper bound in seconds, waits at or under it) for each of
            :data:`WAIT_BUCKETS`, cumulative.
        count: all waits recorded (the implicit ``+Inf`` bucket).
        total: the sum of all waits, in seconds.
    """

    buckets: tuple[tuple[float, int], ...]
    count: int
    total: float


@final
class ClassRecorder:
    """Counters of one class that the scheduler does not keep."""

    __slots__ = (
        "bucket_counts",
        "cancellations",
        "holding",
        "preemptions",
        "rejections",
        "wait_max",
        "wait_total",
        "waits",
    )

    def __init__(self, window: int) -> None:
        self.waits: deque[float] = deque(maxlen=window)
        self.wait_max = 0.0
        self.wait_total = 0.0
        # Per bucket of WAIT_BUCKETS, plus one for waits above the last bound.
        self.bucket_counts = [0] * (len(WAIT_BUCKETS) + 1)
        self.holding = 0
        self.cancellations = 0
        self.rejections = 0
        self.preemptions = 0

    def record_wait(self, wait: float) -> None:
        """Record one grant's wait."""
        self.waits.append(wait)
        self.wait_total += wait
        self.bucket_counts[bisect.bisect_left(WAIT_BUCKETS, wait)] += 1
        if wait > self.wait_max:
            self.wait_max = wait

    def histogram(self) -> WaitHistogram:
        """The cumulative :class:`WaitHistogram` of every wait recorded."""
        cumulative = list(itertools.accumulate(self.bucket_counts))
        return WaitHistogram(
            buckets=tuple(zip(WAIT_BUCKETS, cumulative, strict=False)),
            count=cumulative[-1],
            total=self.wait_total,
        )
