"""The status socket that ``triactor status PID`` reads: made private, removed after use, and
stale ones of killed processes cleaned up."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest
import trio

from triactor import open_actor_system
from triactor.launcher._introspection import (
    NotATriactorProcess,
    request_status,
    serve_status,
    status_directory,
)


def dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    return int(done.stdout)


async def test_the_socket_lives_in_a_private_directory_while_the_system_runs() -> None:
    stale_pid = dead_pid()
    status_directory().mkdir(mode=0o700, exist_ok=True)
    stale = status_directory() / f"{stale_pid}-1.sock"
    stale.touch()  # as a killed process leaves it
    async with open_actor_system() as system, trio.open_nursery() as nursery:
        path = await nursery.start(serve_status, system)
        assert path is not None and path.exists()
        assert path.name.startswith(f"{os.getpid()}-")
        assert not stale.exists()
        mode = status_directory().stat().st_mode
        assert not mode & (stat.S_IRWXG | stat.S_IRWXO)
        report = await trio.to_thread.run_sync(request_status, os.getpid())
        assert report.startswith(f"triactor pid {os.getpid()}: 0 actors")
        nursery.cancel_scope.cancel()
    assert not path.exists()


def test_a_process_without_a_system_is_refused() -> None:
    with pytest.raises(NotATriactorProcess, match="nothing was sent to it"):
        request_status(os.getpid())
    with pytest.raises(ProcessLookupError):
        request_status(dead_pid())
