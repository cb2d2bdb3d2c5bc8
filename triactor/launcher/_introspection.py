"""Looking into a running tree from outside: SIGUSR1 and ``triactor status PID``.

The channel is a signal plus a file: on SIGUSR1 the running process writes a snapshot of every
actor (``system.snapshot()`` rendered as a tree) to ``<tempdir>/triactor-<pid>.status`` and to
stderr. ``triactor status PID`` sends the signal and prints the file once it has been
rewritten. No socket is opened, and nothing is written until someone asks.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import trio

from ..actors import ActorSystem
from ..diagnostics import format_snapshot

__all__ = ["STACK_AGE", "report_on_signal", "request_status", "status_path"]

#: Handlers busy for at least this many seconds get their await stack in the report.
STACK_AGE = 1.0


def status_path(pid: int) -> Path:
    """Where the process ``pid`` writes its status report."""
    return Path(tempfile.gettempdir()) / f"triactor-{pid}.status"


def render_status(system: ActorSystem) -> str:
    """The status report: a header line, then every actor as a tree."""
    stats = system.statistics()
    header = (
        f"triactor pid {os.getpid()}: {stats.actors} actors, "
        f"{stats.dead_letters} dead letters"
        f"{', shutting down' if stats.shutting_down else ''}"
    )
    report = f"{header}\n{format_snapshot(system.snapshot(stacks_older_than=STACK_AGE))}\n"
    exports = system.cluster_statistics()
    if exports:
        lines = [f"cluster node {system.node}: exported names hosted here"]
        lines += [
            f"  {e.name}: stream {e.stream}, length {e.length}, pending {e.pending}, "
            f"received {e.received}, redelivered {e.redelivered}, hosts {', '.join(e.hosts)}"
            for e in exports
        ]
        report += "\n".join(lines) + "\n"
    return report


async def report_on_signal(
    system: ActorSystem, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """On every SIGUSR1, write the status report to stderr and to :func:`status_path`."""
    path = status_path(os.getpid())
    with trio.open_signal_receiver(signal.SIGUSR1) as signals:
        task_status.started()
        try:
            async for _ in signals:
                report = render_status(system)
                print(report, file=sys.stderr, flush=True)
                partial = path.with_suffix(".partial")
                await trio.Path(partial).write_text(report)
                await trio.Path(partial).replace(path)  # readers never see half a report
        finally:
            path.unlink(missing_ok=True)


def request_status(pid: int, timeout: float = 5.0) -> str:
    """Ask the triactor process ``pid`` for its status report and return it.

    Raises:
        ProcessLookupError: if there is no process ``pid``.
        PermissionError: if it may not be signalled.
        TimeoutError: if no report came within ``timeout`` seconds (not a triactor process, or
            it is blocked).
    """
    path = status_path(pid)
    before = path.stat().st_mtime_ns if path.exists() else -1
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_mtime_ns != before:
            return path.read_text()
        time.sleep(0.02)
    raise TimeoutError(
        f"process {pid} wrote no status report within {timeout:g} s; is it running "
        "`triactor run`, and is its loop not blocked?"
    )
