"""Cheaper equivalents of two Trio calls the message path would otherwise make per message.

``checkpoint_if_cancelled()`` costs a coroutine and a call per ``tell``; its test is a few
attribute reads. Trio's default clock adds a Python call and a random offset to
``time.perf_counter``; a duration (how long a handler has been busy) needs neither. Both rely on
Trio internals, checked here once: with a Trio whose internals differ, :data:`FAST_CANCEL` is
False and callers use the public calls instead (same semantics, only slower).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final

import trio

__all__ = ["FAST_CANCEL", "RUN_CONTEXT", "duration_clock"]

_run_context: Any = None
_system_clock: type | None = None
_fast = False
try:
    from trio._core import _run

    _run_context = _run.GLOBAL_RUN_CONTEXT
    _system_clock = _run.SystemClock
    _fast = all(
        hasattr(owner, name)
        for owner, name in (
            (_run.Task, "_cancel_status"),
            (_run.Task, "_runner"),
            (_run.Task, "_cancel_points"),
            (_run.CancelStatus, "effectively_cancelled"),
            (_run.Runner, "main_task"),
            (_run.Runner, "ki_pending"),
        )
    )
except (ImportError, AttributeError):  # pragma: no cover - another Trio: the public calls
    _fast = False
if not _fast:  # pragma: no cover - callers then take the public calls (see RUN_CONTEXT)
    _run_context = None

#: Whether the message path may test for cancellation itself, as ``checkpoint_if_cancelled``
#: does (and then call it only when it has to raise). With ``task = RUN_CONTEXT.task``, the
#: test is ``task._cancel_status.effectively_cancelled or (task is task._runner.main_task and
#: task._runner.ki_pending)``; when it is false, ``task._cancel_points += 1`` (what
#: ``trio.testing.assert_checkpoints`` counts) is all the call would have done.
FAST_CANCEL: Final = _fast

#: Trio's per-thread run state (``.task`` is the running task); None without FAST_CANCEL.
RUN_CONTEXT: Final[Any] = _run_context


def duration_clock() -> Callable[[], float]:
    """A function reading the current run's clock for durations: differences of two readings
    are differences of Trio time. ``time.perf_counter`` under Trio's own clock (its readings are
    Trio time less a constant offset), the clock's ``current_time`` under any other clock (a
    ``MockClock``). Call it inside ``trio.run``.
    """
    clock = trio.lowlevel.current_clock()
    if _system_clock is not None and type(clock) is _system_clock:
        return time.perf_counter
    return clock.current_time
