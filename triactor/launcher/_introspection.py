"""Looking into a running tree from outside: ``triactor status PID``, and SIGUSR1.

A tree run by :func:`~triactor.launcher.run_tree` (so by ``triactor run``, ``triactor.run``
and ``start_in_thread``) listens on a Unix socket, ``<tempdir>/triactor-<uid>/<pid>-<n>.sock``,
in a directory only its user may enter; whoever connects gets the status report (every
actor's state, mailbox, counts, current message type and, for handlers busy a second or more,
their await stack) and the connection closes. ``triactor status PID`` reads the sockets of
process PID. It sends no signal: a PID that runs no triactor tree has no socket, and is
refused without being touched. Under signal handling, SIGUSR1 also writes the report to the
process's own output.
"""

from __future__ import annotations

import contextlib
import datetime
import itertools
import os
import signal
import socket
import stat
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

import attrs
import trio

from .._logging import logger
from ..actors import ActorSystem
from ..diagnostics import format_snapshot

__all__ = [
    "STACK_AGE",
    "NotATriactorProcess",
    "StatusWriter",
    "render_status",
    "report_on_signal",
    "request_status",
    "serve_report",
    "serve_status",
    "status_directory",
    "status_json",
]

#: Handlers busy for at least this many seconds get their await stack in the report.
STACK_AGE = 1.0

#: What SIGUSR1 does with the system (see :func:`report_on_signal`).
StatusWriter = Callable[[ActorSystem], None]

_SEND_TIMEOUT: Final = 5.0  # a reader that does not read is dropped after this long
_numbers = itertools.count(1)  # one socket per running tree, several trees per process


class NotATriactorProcess(LookupError):
    """The process exists but runs no triactor tree that answers status requests."""


def status_directory() -> Path:
    """The directory of the status sockets of this user's triactor processes."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"triactor-{uid}"


def _private(directory: Path) -> bool:
    """Whether ``directory`` is a directory of this user that nobody else may enter."""
    try:
        info = directory.lstat()
    except OSError:
        return False
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.getuid()
        and not info.st_mode & (stat.S_IRWXG | stat.S_IRWXO)
    )


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


def status_json(system: ActorSystem) -> dict[str, Any]:
    """The status report as one JSON object: ``text`` (as rendered) and the ``status`` data."""
    stats = system.statistics()
    return {
        "text": render_status(system),
        "status": {
            "time": datetime.datetime.now().astimezone().isoformat(),
            "pid": os.getpid(),
            "actors": stats.actors,
            "dead_letters": stats.dead_letters,
            "shutting_down": stats.shutting_down,
            "snapshot": [
                attrs.asdict(snap) for snap in system.snapshot(stacks_older_than=STACK_AGE)
            ],
            "cluster": [attrs.asdict(export) for export in system.cluster_statistics()],
        },
    }


def _print_to_stderr(system: ActorSystem) -> None:
    print(render_status(system), file=sys.stderr, flush=True)


async def report_on_signal(
    system: ActorSystem,
    write: StatusWriter | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """On every SIGUSR1, call ``write(system)``; by default, print the report to stderr."""
    write = write or _print_to_stderr
    with trio.open_signal_receiver(signal.SIGUSR1) as signals:
        task_status.started()
        async for _ in signals:
            write(system)


def _socket_path() -> Path | None:
    """A new socket path in the private status directory (made if missing), or None."""
    directory = status_directory()
    with contextlib.suppress(OSError):
        directory.mkdir(mode=0o700, exist_ok=True)
    if not _private(directory):
        return None
    _remove_stale_sockets(directory)
    path = directory / f"{os.getpid()}-{next(_numbers)}.sock"
    path.unlink(missing_ok=True)  # left by an earlier process with the same pid
    return path


def _remove_stale_sockets(directory: Path) -> None:
    """Remove the sockets of processes that ended without removing them (killed)."""
    for path in directory.glob("*-*.sock"):
        pid = path.name.split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _process_exists(int(pid)):
            path.unlink(missing_ok=True)


async def serve_status(
    system: ActorSystem, task_status: trio.TaskStatus[Path | None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Answer ``triactor status`` until cancelled: each connection gets the report.

    Reports the socket's path through ``task_status`` (None, after a warning, when the status
    directory is not private to this user or Unix sockets are missing: then nothing listens).
    """

    async def render() -> str:
        return render_status(system)

    await serve_report(render, task_status=task_status)


async def serve_report(
    render: Callable[[], Awaitable[str]],
    task_status: trio.TaskStatus[Path | None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Like :func:`serve_status`, with the report ``render()`` makes at each request."""
    path = _socket_path() if hasattr(socket, "AF_UNIX") else None
    if path is None:
        logger.warning(
            "`triactor status` cannot reach this process: {} is not a directory private to "
            "this user",
            status_directory(),
        )
        task_status.started(None)
        return
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        await sock.bind(str(path))
        sock.listen(8)
        async with trio.SocketListener(sock) as listener:
            task_status.started(path)
            while True:
                stream = await listener.accept()
                async with stream:
                    with trio.move_on_after(_SEND_TIMEOUT):
                        with contextlib.suppress(trio.BrokenResourceError):
                            report = await render()
                            await stream.send_all(report.encode())
    finally:
        sock.close()
        path.unlink(missing_ok=True)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0 delivers nothing: it only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's
    return True


def _read(path: Path, deadline: float) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(max(deadline - time.monotonic(), 0.001))
        client.connect(str(path))
        chunks = []
        while chunk := client.recv(65536):
            chunks.append(chunk)
            client.settimeout(max(deadline - time.monotonic(), 0.001))
        return b"".join(chunks).decode()


def request_status(pid: int, timeout: float = 5.0) -> str:
    """Return the status report of every tree that process ``pid`` runs.

    Reads the process's status sockets; sends no signal.

    Raises:
        ProcessLookupError: if there is no process ``pid``.
        NotATriactorProcess: if it runs no triactor tree (a tree of ``run_tree``, the
            ``triactor`` command, ``triactor.run`` or ``start_in_thread``) of this user.
        TimeoutError: if a tree did not answer within ``timeout`` seconds (its event loop is
            blocked).
    """
    directory = status_directory()
    sockets = sorted(directory.glob(f"{pid}-*.sock")) if _private(directory) else []
    deadline = time.monotonic() + timeout
    reports = []
    for path in sockets:
        try:
            reports.append(_read(path, deadline))
        except (ConnectionRefusedError, FileNotFoundError):
            continue  # left by a process that ended, or a tree that just stopped
        except TimeoutError:
            raise TimeoutError(
                f"process {pid} did not answer within {timeout:g} s; is its event loop blocked?"
            ) from None
    if reports:
        return "\n".join(reports)
    if not _process_exists(pid):
        raise ProcessLookupError(f"no process {pid}")
    raise NotATriactorProcess(
        f"process {pid} runs no triactor tree that answers status requests (no status socket "
        f"of it in {directory}); nothing was sent to it. `triactor run`, triactor.run and "
        "start_in_thread answer; a bare open_actor_system does not"
    )
