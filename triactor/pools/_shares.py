"""Priority classes and their minimum shares: validation, and the starvation bound they imply.

Shares are kept as integers in millionths of a grant (:data:`UNIT` is one whole grant), so the
credit arithmetic in the scheduler is exact and the bound below is computed from the very numbers
the scheduler uses.

The bound (see :func:`starvation_bound` and the ``PriorityPool`` docstring) is proved from the
credit rule in ``_scheduler.py``: every grant adds ``s`` to the credit of each waiting class with
share ``s``; a class whose credit would reach 1 is *eligible*; the highest eligible class is
served, else the highest waiting class; the served class pays 1 (never going below 0); a class
with no waiters has credit 0.

* Class ``i`` with share ``s_i > 0``. Until its credit reaches 1 it can lose at most
  ``ceil(1/s_i) - 1`` grants to anyone. Once eligible, only eligible classes above it beat it.
  Their total credit ``T`` is always below ``a_i`` (the number of positive-share classes above
  ``i``): it only grows on grants where none of them is eligible, and then each is below 1. Each
  such win costs its class 1 while the group earns at most ``S_i`` (their summed share) per
  grant, so they win fewer than ``a_i / (1 - S_i)`` grants in a row.
* The highest class with share 0: every grant it loses is a credit grant paying 1, while all
  classes together earn at most ``S`` (the sum of all shares) per grant and hold below ``n``
  (the number of positive-share classes), so it loses fewer than ``n / (1 - S)`` in a row.
* Any other class with share 0 has no guarantee: strict priority may serve the classes above it
  for as long as they have waiters.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Final

__all__ = ["UNIT", "parse_classes", "starvation_bound", "wait_bound"]

#: One whole grant of credit; shares are stored in millionths.
UNIT: Final = 1_000_000


def parse_classes(classes: Mapping[str, float]) -> tuple[tuple[str, int], ...]:
    """Validate ``classes`` and return ``(name, share in millionths)`` pairs in priority order.

    Raises:
        TypeError: if ``classes`` is not a mapping of str to real numbers.
        ValueError: if it is empty, a name is empty, a share is outside [0, 1] or below one
            millionth without being 0, or the shares sum to more than 1.
    """
    if not isinstance(classes, Mapping):
        raise TypeError(
            "classes must be a mapping of class name to minimum share, highest priority first, "
            f"e.g. {{'high': 0.0, 'mid': 0.2, 'low': 0.1}}; got {classes!r}"
        )
    if not classes:
        raise ValueError("classes must name at least one priority class")
    parsed: list[tuple[str, int]] = []
    items: list[tuple[object, object]] = list(classes.items())
    for name, share in items:
        if not isinstance(name, str):
            raise TypeError(f"priority class names must be str, got {name!r}")
        if not name:
            raise ValueError("priority class names must not be empty")
        if isinstance(share, bool) or not isinstance(share, Real):
            raise TypeError(
                f"the minimum share of class {name!r} must be a number in [0, 1], got {share!r}"
            )
        value = float(share)
        if not 0.0 <= value <= 1.0:
            raise ValueError(
                f"the minimum share of class {name!r} must be in [0, 1] (a fraction of all "
                f"grants), got {share!r}"
            )
        units = round(value * UNIT)
        if value > 0.0 and units == 0:
            raise ValueError(
                f"the minimum share of class {name!r} is {share!r}; use 0 or at least 1e-6"
            )
        parsed.append((name, units))
    total = sum(units for _, units in parsed)
    if total > UNIT:
        listing = ", ".join(f"{name}={units / UNIT:g}" for name, units in parsed)
        raise ValueError(
            f"minimum shares sum to {total / UNIT:g} ({listing}); they are fractions of all "
            "grants and must sum to at most 1"
        )
    return tuple(parsed)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def starvation_bound(units: Sequence[int], index: int) -> int | None:
    """The most grants that can go to other classes in a row while class ``index`` waits.

    ``units`` are the shares of all classes in millionths, highest priority first. Returns None
    when the class has no guarantee (share 0 below another class, or share 0 at the top while
    the other shares sum to 1).
    """
    share = units[index]
    above = units[:index]
    if share > 0:
        bound = _ceil_div(UNIT, share) - 1
        above_count = sum(1 for u in above if u > 0)
        if above_count:
            bound += _ceil_div(above_count * UNIT, UNIT - sum(above)) - 1
        return bound
    if index > 0:
        return None
    count = sum(1 for u in units if u > 0)
    if count == 0:
        return 0
    rest = UNIT - sum(units)
    if rest <= 0:
        return None
    return _ceil_div(count * UNIT, rest) - 1


def wait_bound(
    run_bound: int | None,
    *,
    capacity: int,
    max_hold: float,
    max_weight: int = 1,
    rate: float | None = None,
) -> float:
    """Seconds until a waiting class is served, from its run bound; ``inf`` if unbounded.

    With weight-1 requests and no rate gate, every slot is released and handed on at least once
    per ``max_hold``, so ``capacity`` grants happen per ``max_hold`` and the class's turn (grant
    number ``run_bound + 1``) comes within ``ceil((run_bound + 1) / capacity) * max_hold``. In
    general each grant follows the previous one within ``max_hold`` (all slots are free by then)
    plus ``max_weight / rate`` for tokens, giving ``(run_bound + 1) * (max_hold + max_weight /
    rate)``.
    """
    if run_bound is None:
        return math.inf
    turns = run_bound + 1
    if max_weight == 1 and rate is None:
        return _ceil_div(turns, capacity) * max_hold
    token_time = 0.0 if rate is None else max_weight / rate
    return turns * (max_hold + token_time)
