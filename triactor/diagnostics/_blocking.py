"""Catching the accidental blocking call: a Trio instrument plus a watchdog thread."""

from __future__ import annotations

import signal
import sys
import threading
import time
import types
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal, final

import attrs
import trio

from .._errors import ActorError
from .._logging import logger
from ..actors._cell import current_cell
from ._stacks import format_frames, user_frame

__all__ = ["BlockingCallDetected", "BlockingDetector", "BlockingReport", "detect_blocking"]


@final
@attrs.frozen
class BlockingReport:
    """One stretch of time in which a task ran without yielding to the Trio loop.

    Attributes:
        task: the name of the Trio task that blocked the loop.
        actor: the path of the actor whose task it was, or None.
        message_type: the type of the message that actor was handling, or None.
        blocked_for: how long the loop was blocked, in seconds (at least the threshold; the
            whole stretch once it has ended).
        culprit: the innermost frame outside Trio and triactor while it blocked, as
            ``file:line in function`` (the line calling ``time.sleep``, say), or None.
        stack: the stack captured while the loop was blocked, outermost first.
    """

    task: str
    actor: str | None
    message_type: str | None
    blocked_for: float
    culprit: str | None
    stack: tuple[str, ...]

    def __str__(self) -> str:
        who = f"actor {self.actor}" if self.actor else f"task {self.task}"
        handling = f" handling {self.message_type}" if self.message_type else ""
        lines = [
            f"{who}{handling} blocked the Trio loop for {self.blocked_for:.3f} s "
            f"(no other task ran meanwhile); blocking call at {self.culprit or 'unknown'}. "
            "Use an async call, or make the handler a plain def so it runs in a thread.",
            "Stack while blocked (most recent call last):",
        ]
        lines.extend(f"  {frame}" for frame in self.stack)
        return "\n".join(lines)


class BlockingCallDetected(ActorError):
    """Raised by ``detect_blocking(mode="fail")`` when a task blocked the loop.

    Attributes:
        reports: every :class:`BlockingReport` of the block.
    """

    def __init__(self, reports: list[BlockingReport]) -> None:
        super().__init__("\n\n".join(str(report) for report in reports))
        self.reports = reports


@final
class BlockingDetector(trio.abc.Instrument):
    """Reports any task that runs longer than ``threshold`` seconds without yielding.

    A Trio instrument notes when each task step starts and ends; a watchdog (a periodic
    SIGALRM in the main thread, else a thread) looks a few times per threshold and, while a
    step overruns, captures the loop thread's
    stack: the report points at the blocking line itself (the ``time.sleep``, the synchronous
    HTTP call), with the actor path and the message type being handled. Each overrun is
    reported once, to ``on_block``, when the step ends (so ``blocked_for`` is the whole
    stretch).

    Every stretch of at least 1.25 x ``threshold`` (1.5 x with the thread watchdog) is
    reported; a shorter one may be missed, depending on when the watchdog looks. Use it
    through :func:`detect_blocking`; it is not a profiler: a step costs the instrument a clock
    read and two attribute writes. In the main thread it owns SIGALRM while it runs (it falls
    back to the thread if something else has installed a SIGALRM handler).
    """

    def __init__(
        self, threshold: float = 0.1, on_block: Callable[[BlockingReport], None] | None = None
    ) -> None:
        if not threshold > 0:
            raise ValueError(f"blocking threshold must be > 0 seconds, got {threshold!r}")
        self.threshold = threshold
        self.on_block = on_block
        #: Every report so far, oldest first.
        self.reports: list[BlockingReport] = []
        self._task: trio.lowlevel.Task | None = None
        self._step_started = 0.0
        self._captured: BlockingReport | None = None
        self._loop_thread = threading.get_ident()
        # Held while the watchdog should run; released to stop it. A bare lock, not an Event:
        # its timed wait takes the GIL once per wake-up, where an Event takes it several times.
        self._running = threading.Lock()
        self._watchdog: threading.Thread | None = None
        self._alarm = False
        self._previous_alarm: Any = None
        # The step last reported, so that each overrun is reported once.
        self._seen: trio.lowlevel.Task | None = None
        self._seen_at = -1.0

    def __repr__(self) -> str:
        return f"<BlockingDetector threshold={self.threshold}s, {len(self.reports)} reports>"

    # -- instrument hooks (the loop thread) -----------------------------------------------------

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        """Note which task runs and since when."""
        self._step_started = time.perf_counter()
        self._task = task

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        """Close the step; publish its report if the watchdog captured one."""
        self._task = None
        captured = self._captured
        if captured is not None:
            self._captured = None
            report = attrs.evolve(captured, blocked_for=time.perf_counter() - self._step_started)
            self.reports.append(report)
            if self.on_block is not None:
                self.on_block(report)

    # -- the watchdog (its own thread) ----------------------------------------------------------

    def start(self) -> None:
        """Start watching, from the Trio thread.

        In the main thread (with SIGALRM unused) the watchdog is a periodic SIGALRM whose
        handler runs in the loop thread itself, between bytecodes, even while it is blocked in
        a ``time.sleep``: it costs a few microseconds per tick. Elsewhere it is a thread, whose
        every wake-up must take the GIL from the loop: slower, so it looks less often.
        """
        self._loop_thread = threading.get_ident()
        # The step that installs the detector is watched too.
        self._task = trio.lowlevel.current_task()
        self._step_started = time.perf_counter()
        if threading.current_thread() is threading.main_thread() and signal.getsignal(
            signal.SIGALRM
        ) in (signal.SIG_DFL, signal.SIG_IGN, None):
            self._previous_alarm = signal.signal(signal.SIGALRM, self._on_alarm)
            interval = self.threshold / 4
            signal.setitimer(signal.ITIMER_REAL, interval, interval)
            self._alarm = True
            return
        self._running.acquire()
        self._watchdog = threading.Thread(
            target=self._watch, name="triactor-blocking-watchdog", daemon=True
        )
        self._watchdog.start()

    def stop(self) -> None:
        """Stop watching (the timer or the thread) and wait for it."""
        if self._alarm:
            signal.setitimer(signal.ITIMER_REAL, 0, 0)
            signal.signal(signal.SIGALRM, self._previous_alarm or signal.SIG_DFL)
            self._alarm = False
        if self._watchdog is not None:
            self._running.release()
            self._watchdog.join()
            self._watchdog = None

    def _on_alarm(self, signum: int, frame: types.FrameType | None) -> None:
        if frame is not None:
            self._check(frame)

    def _watch(self) -> None:
        # Checking twice per threshold keeps the GIL hand-offs rare while any block of
        # 1.5 x threshold is always caught.
        interval = self.threshold / 2
        while not self._running.acquire(timeout=interval):
            if self._task is not None:
                self._check(sys._current_frames().get(self._loop_thread))

    def _check(self, frame: types.FrameType | None) -> None:
        """If the running step has overrun, capture its report (once per step)."""
        task, started = self._task, self._step_started
        if task is None or frame is None or (task is self._seen and started == self._seen_at):
            return
        if time.perf_counter() - started < self.threshold or self._task is not task:
            return
        self._seen, self._seen_at = task, started
        self._captured = self._report(task, frame, time.perf_counter() - started)

    def _report(
        self, task: trio.lowlevel.Task, frame: types.FrameType, blocked_for: float
    ) -> BlockingReport:
        frames: list[tuple[types.FrameType, int]] = []
        walker: types.FrameType | None = frame
        while walker is not None:
            frames.append((walker, walker.f_lineno))
            walker = walker.f_back
        frames.reverse()
        # Only the part of the stack inside the task: from its coroutine's outermost frame.
        outer = task.coro.cr_frame
        for index, (candidate, _) in enumerate(frames):
            if candidate is outer:
                frames = frames[index:]
                break
        cell = task.context.get(current_cell)
        current = cell.current if cell is not None else None
        return BlockingReport(
            task=task.name,
            actor=cell.path if cell is not None else None,
            message_type=type(current).__qualname__ if current is not None else None,
            blocked_for=blocked_for,
            culprit=user_frame(frames),
            stack=format_frames(frames),
        )


def _warn(report: BlockingReport) -> None:
    logger.bind(actor=report.actor).warning("{}", report)


@asynccontextmanager
async def detect_blocking(
    threshold: float = 0.1, *, mode: Literal["warn", "fail", "record"] = "warn"
) -> AsyncIterator[BlockingDetector]:
    """Watch the current Trio run for tasks that block the loop, while the block runs.

    Example::

        async with detect_blocking(0.1):           # logs a warning per blocking call
            async with open_actor_system() as system:
                ...

    Modes: ``"warn"`` logs each report (with the blocking line and the stack) at WARNING;
    ``"fail"`` also raises :class:`BlockingCallDetected` with every report when the block
    exits (for tests); ``"record"`` only collects them in ``detector.reports``.

    Raises:
        BlockingCallDetected: in ``"fail"`` mode, if anything blocked the loop.
        ValueError: if ``threshold`` is not positive or ``mode`` is unknown.
    """
    if mode not in ("warn", "fail", "record"):
        raise ValueError(f"mode must be 'warn', 'fail' or 'record', got {mode!r}")
    detector = BlockingDetector(threshold, on_block=None if mode == "record" else _warn)
    trio.lowlevel.add_instrument(detector)
    detector.start()
    try:
        yield detector
    finally:
        detector.stop()
        trio.lowlevel.remove_instrument(detector)
    if mode == "fail" and detector.reports:
        raise BlockingCallDetected(detector.reports)
