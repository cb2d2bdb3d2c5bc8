"""Functions the CPU-path tests run in worker processes (importable, so they pickle)."""

from __future__ import annotations

import os
import time


def pid_and_square(n: int) -> tuple[int, int]:
    """Return the worker's pid and ``n * n``."""
    return os.getpid(), n * n


def fail(reason: str) -> None:
    """Raise ValueError in the worker."""
    raise ValueError(reason)


def report_pid_then_hang(fifo: str) -> None:
    """Write the worker's pid into the named pipe ``fifo``, then never return."""
    with open(fifo, "w") as pipe:
        pipe.write(str(os.getpid()))
    while True:
        time.sleep(3600)
