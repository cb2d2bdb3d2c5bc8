"""Catching the accidental blocking call: a Trio instrument plus a watchdog thread."""

from __future__ import annotations

import sys
import threading
import time
import types
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Literal, final

import attrs
import trio
from loguru import logger

from .._errors import ActorError
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

    A Trio instrument notes when each task step starts and ends; a watchdog thread checks
    every ``threshold / 2`` seconds and, while a step overruns, captures the loop thread's
    stack: the report points at the blocking line itself (the ``time.sleep``, the synchronous
    HTTP call), with the actor path and the message type being handled. Each overrun is
    reported once, to ``on_block``, when the step ends (so ``blocked_for`` is the whole
    stretch).

    Every stretch of at least 1.5 x ``threshold`` is reported; one between ``threshold`` and
    that may be missed, depending on when the watchdog looks. Use it through
    :func:`detect_blocking`; it is not a profiler: a step costs the instrument two attribute
    writes, and the watchdog wakes twice per threshold.
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

    def __repr__(self) -> str:
        return f"<BlockingDetector threshold={self.threshold}s, {len(self.reports)} reports>"

    # -- instrument hooks (the loop thread) -----------------------------------------------------

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self._step_started = time.perf_counter()
        self._task = task

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
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
        """Start the watchdog thread (from the Trio thread, which it will watch)."""
        self._loop_thread = threading.get_ident()
        # The step that installs the detector is watched too.
        self._task = trio.lowlevel.current_task()
        self._step_started = time.perf_counter()
        self._running.acquire()
        self._watchdog = threading.Thread(
            target=self._watch, name="triactor-blocking-watchdog", daemon=True
        )
        self._watchdog.start()

    def stop(self) -> None:
        """Stop the watchdog thread and wait for it."""
        if self._watchdog is not None:
            self._running.release()
            self._watchdog.join()
            self._watchdog = None

    def _watch(self) -> None:
        # Every wake-up of this thread takes the GIL from the loop; checking twice per
        # threshold keeps that cost small while any block of 1.5 x threshold is always caught.
        interval = self.threshold / 2
        seen: trio.lowlevel.Task | None = None
        seen_started = -1.0
        while not self._running.acquire(timeout=interval):
            task, started = self._task, self._step_started
            if task is None or (task is seen and started == seen_started):
                continue
            if time.perf_counter() - started < self.threshold:
                continue
            frame = sys._current_frames().get(self._loop_thread)
            if frame is None or self._task is not task:
                continue
            seen, seen_started = task, started
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
