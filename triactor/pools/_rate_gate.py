"""A token bucket that the pool's dispatcher consults before each grant."""

from __future__ import annotations

from typing import Final, final

__all__ = ["RateGate"]

# Float slack when comparing token counts, so a timer set for the exact refill moment is
# never a hair early.
_EPSILON: Final = 1e-9


@final
class RateGate:
    """Tokens refill at ``rate`` per second up to ``burst``; a grant of weight k spends k.

    The bucket starts full. It holds no tasks and sets no timers: the pool asks it whether a
    grant may go now (:meth:`try_take`) and, if not, when it may (:meth:`ready_at`), and sets
    the waiting task's own deadline to that moment. Over any interval of length ``t`` it lets
    through at most ``burst + rate * t`` tokens.
    """

    __slots__ = ("_stamp", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._stamp: float | None = None

    def _refill(self, now: float) -> None:
        if self._stamp is None:
            self._stamp = now
        elif now > self._stamp:
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now

    def tokens(self, now: float) -> float:
        """Tokens available at ``now``."""
        self._refill(now)
        return self._tokens

    def try_take(self, amount: int, now: float) -> bool:
        """Spend ``amount`` tokens if they are there; return whether it did."""
        self._refill(now)
        if self._tokens + _EPSILON >= amount:
            self._tokens -= amount
            return True
        return False

    def ready_at(self, amount: int, now: float) -> float:
        """The earliest time at which ``amount`` tokens will be available."""
        self._refill(now)
        missing = amount - self._tokens
        return now if missing <= _EPSILON else now + missing / self.rate
