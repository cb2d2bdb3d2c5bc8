"""The live status line of ``triactor run``: actors, messages processed, restarts, on a terminal."""

from __future__ import annotations

import os
import threading
from typing import TextIO, final

import attrs
import trio

from ..actors import ActorRef, ActorSystem

__all__ = ["StatusLine", "StatusSnapshot", "format_status", "take_snapshot"]


@final
@attrs.frozen
class StatusSnapshot:
    """What the status line shows, summed over the live actors of a system.

    Attributes:
        actors: live actors, supervisors included.
        processed: messages their handlers completed (over all their incarnations).
        restarts: times their supervisors restarted them.
        queued: user messages waiting in their mailboxes.
        dead_letters: dead letters since the system started.
        shutting_down: whether the system is shutting down.
    """

    actors: int
    processed: int
    restarts: int
    queued: int
    dead_letters: int
    shutting_down: bool


def take_snapshot(system: ActorSystem) -> StatusSnapshot:
    """Sum the statistics of every live actor of ``system`` (a pass over all of them)."""
    processed = restarts = queued = 0
    refs = system.actors()
    for ref in refs:
        stats = ref.statistics()
        processed += stats.processed
        restarts += stats.restarts
        queued += stats.mailbox.depth
    system_stats = system.statistics()
    return StatusSnapshot(
        actors=len(refs),
        processed=processed,
        restarts=restarts,
        queued=queued,
        dead_letters=system_stats.dead_letters,
        shutting_down=system_stats.shutting_down,
    )


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def format_status(snapshot: StatusSnapshot, *, uptime: float, rate: float) -> str:
    """One status line, e.g. ``running 0:01:05 | 7 actors | 1,204 processed (98/s) | ...``."""
    state = "stopping" if snapshot.shutting_down else "running"
    return (
        f"{state} {_clock(uptime)} | {snapshot.actors:,} actors | "
        f"{snapshot.processed:,} processed ({rate:,.0f}/s) | {snapshot.restarts:,} restarts | "
        f"{snapshot.queued:,} queued | {snapshot.dead_letters:,} dead letters"
    )


@final
class StatusLine:
    """A live status line at the bottom of a terminal, with log lines scrolling above it.

    Use :meth:`write` as the log sink and :meth:`run` as the run's monitor (see
    ``triactor.run(monitor=...)``): every ``interval`` seconds it redraws the line from the
    system's statistics; each log line first erases it and then draws it again below. When
    ``enabled`` is false (the stream is not a terminal), :meth:`write` just writes and
    :meth:`run` returns at once, so that logs piped to a file hold no control codes.
    """

    def __init__(self, stream: TextIO, *, enabled: bool, interval: float = 0.5) -> None:
        self.stream = stream
        self.enabled = enabled
        self.interval = interval
        self._line = ""
        self._lock = threading.Lock()  # log lines may come from worker threads

    def __repr__(self) -> str:
        return f"<StatusLine {'on' if self.enabled else 'off'}: {self._line!r}>"

    def _width(self) -> int:
        try:
            return max(20, os.get_terminal_size(self.stream.fileno()).columns - 1)
        except (OSError, ValueError, AttributeError):
            return 119

    def write(self, text: str) -> None:
        """Write a log line (ending in a newline) above the status line."""
        with self._lock:
            if self._line:
                self.stream.write("\r\x1b[K" + text + self._line)
            else:
                self.stream.write(text)
            self.stream.flush()

    def show(self, line: str) -> None:
        """Replace the status line with ``line`` (cut to the terminal's width)."""
        with self._lock:
            self._line = line[: self._width()]
            self.stream.write("\r\x1b[K" + self._line)
            self.stream.flush()

    def clear(self) -> None:
        """Erase the status line."""
        with self._lock:
            if self._line:
                self._line = ""
                self.stream.write("\r\x1b[K")
                self.stream.flush()

    async def run(self, system: ActorSystem, root: ActorRef) -> None:
        """Redraw the line until cancelled (when the tree stops), then erase it."""
        if not self.enabled:
            return
        started = last_time = trio.current_time()
        last_processed = 0
        try:
            while True:
                snapshot = take_snapshot(system)
                now = trio.current_time()
                elapsed = now - last_time
                rate = (snapshot.processed - last_processed) / elapsed if elapsed > 0 else 0.0
                self.show(format_status(snapshot, uptime=now - started, rate=max(rate, 0.0)))
                last_time, last_processed = now, snapshot.processed
                await trio.sleep(self.interval)
        finally:
            self.clear()
