"""``triactor run app:tree --workers N``: N processes running one tree, supervised like OTP.

Each worker is a ``triactor run app:tree`` process joined to the same cluster, under a stable
node name (``<prefix>-w1`` ...), so the names the tree exports become competing consumers:
work spreads over the workers' cores (and over machines running more workers). This process
supervises them the way a supervisor supervises children:

- a worker that dies (a crash, a SIGKILL) is started again under the same node name, after
  a backoff; the new process takes up its own unacknowledged messages at once, and the other
  workers claim them if it stays away longer than the cluster's ``claim_after``;
- more than ``max_restarts`` restarts within ``within`` seconds (all workers counted) make it
  stop every worker and exit 1 (it gave up);
- SIGINT/SIGTERM is passed to every worker, which drains and stops gracefully; a second
  signal is passed on too (the workers then stop at once);
- the exit code is 0 when every worker stopped cleanly, else the first worker's failure code;
- ``triactor status PID`` of this process shows every worker and what each of them runs.

With no ``--cluster``, a private server (a Valkey or Redis binary found as in the test suite)
is started on a unix socket in a temporary directory, and stopped at the end.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections import deque
from collections.abc import Sequence
from typing import Final, final

import attrs
import trio

from .._logging import logger
from ..supervision import Backoff
from ._introspection import NotATriactorProcess, request_status, serve_report

__all__ = ["WorkerPool", "run_workers"]

EXIT_OK: Final = 0
EXIT_GAVE_UP: Final = 1

_DEFAULT_BACKOFF: Final = Backoff(min=0.2, max=5.0, jitter=0.2)


@final
@attrs.define
class _Worker:
    slot: int
    node: str
    process: trio.Process | None = None
    starts: int = 0
    exit_code: int | None = None
    finished: bool = False

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid


@final
class WorkerPool:
    """The worker processes of one ``triactor run --workers N``. Internal.

    Args:
        command: the ``triactor run`` command line of one worker, without ``--node``.
        count: how many workers.
        node_prefix: node names are ``<prefix>-w<slot>``.
        max_restarts, within: the restart intensity, over all workers.
        backoff: the delay before each restart of one worker.
    """

    def __init__(
        self,
        command: Sequence[str],
        count: int,
        *,
        node_prefix: str,
        max_restarts: int = 3,
        within: float = 5.0,
        backoff: Backoff = _DEFAULT_BACKOFF,
    ) -> None:
        if count < 1:
            raise ValueError(f"--workers must be at least 1, got {count}")
        self._command = list(command)
        self._workers = [_Worker(slot, f"{node_prefix}-w{slot}") for slot in range(1, count + 1)]
        self._max_restarts = max_restarts
        self._within = within
        self._backoff = backoff
        self._restarts: deque[float] = deque()
        self._stopping = False
        self._gave_up = False
        self._signals = 0

    def __repr__(self) -> str:
        running = sum(1 for worker in self._workers if worker.process is not None)
        return f"<WorkerPool {running}/{len(self._workers)} running, restarts {self.restarts}>"

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called (by a signal, or because the pool gave up)."""
        return self._stopping

    @property
    def restarts(self) -> int:
        """Restarts of workers since the pool started (all workers)."""
        return sum(max(0, worker.starts - 1) for worker in self._workers)

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> int:
        """Start every worker, supervise them until all have stopped; return the exit code."""
        async with trio.open_nursery() as nursery:
            for worker in self._workers:
                await self._start(worker)
            task_status.started()
            for worker in self._workers:
                nursery.start_soon(self._supervise, worker, nursery.cancel_scope)
        if self._gave_up:
            return EXIT_GAVE_UP
        for worker in self._workers:
            if worker.exit_code not in (None, 0):
                return worker.exit_code
        return EXIT_OK

    def stop(self) -> None:
        """Stop every worker gracefully (a second call stops them at once)."""
        self._signals += 1
        self._stopping = True
        for worker in self._workers:
            process = worker.process
            if process is not None and process.returncode is None:
                process.send_signal(signal.SIGTERM if self._signals == 1 else signal.SIGINT)

    async def _start(self, worker: _Worker) -> None:
        command = [*self._command, "--node", worker.node]
        # A session of its own: a Ctrl-C at the terminal reaches this process only, which
        # passes one graceful stop on (the terminal's SIGINT plus ours would be two signals,
        # the second of which cancels at once).
        worker.process = await trio.lowlevel.open_process(
            command, stdin=subprocess.DEVNULL, start_new_session=True
        )
        worker.starts += 1
        logger.info(
            "worker {} started (pid {}, node {})", worker.slot, worker.process.pid, worker.node
        )

    async def _supervise(self, worker: _Worker, pool_scope: trio.CancelScope) -> None:
        streak = 0
        while True:
            process = worker.process
            assert process is not None
            code = await process.wait()
            worker.exit_code = code
            if self._stopping:
                worker.finished = True
                return
            if code == 0:
                logger.info("worker {} (node {}) finished", worker.slot, worker.node)
                worker.finished = True
                return
            how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
            now = trio.current_time()
            self._restarts.append(now)
            while self._restarts and self._restarts[0] < now - self._within:
                self._restarts.popleft()
            if len(self._restarts) > self._max_restarts:
                logger.error(
                    "worker {} (node {}) died ({}); {} restarts within {:g} s is more than "
                    "max_restarts={}: stopping every worker",
                    worker.slot,
                    worker.node,
                    how,
                    len(self._restarts),
                    self._within,
                    self._max_restarts,
                )
                self._gave_up = True
                self.stop()
                worker.finished = True
                return
            delay = self._backoff.delay(streak)
            streak += 1
            logger.warning(
                "worker {} (node {}) died ({}); restarting it in {:.2f} s",
                worker.slot,
                worker.node,
                how,
                delay,
            )
            await trio.sleep(delay)
            if self.stopping:
                worker.finished = True
                return
            await self._start(worker)

    async def render_status(self) -> str:
        """The status of the pool and, below, each worker's own report."""
        lines = [
            f"triactor workers, pid {os.getpid()}: {len(self._workers)} workers, "
            f"{self.restarts} restarts{', stopping' if self._stopping else ''}"
        ]
        reports = []
        for worker in self._workers:
            pid = worker.pid
            state = "stopped" if worker.finished else "running"
            lines.append(f"  worker {worker.slot}: node {worker.node}, pid {pid}, {state}")
            if pid is not None and not worker.finished:
                try:
                    report = await trio.to_thread.run_sync(request_status, pid, 2.0)
                except (NotATriactorProcess, ProcessLookupError):
                    report = "(starting: no status yet)"
                except TimeoutError as exc:
                    report = f"({exc})"
                reports.append(f"--- worker {worker.slot} (pid {pid}) ---\n{report.rstrip()}")
        return "\n".join([*lines, *reports]) + "\n"


def default_node_prefix() -> str:
    """Node names of this run's workers start with this: host and launcher pid."""
    return f"{socket.gethostname()}-{os.getpid()}"


async def run_workers(
    target: str,
    count: int,
    *,
    cluster: str | None,
    cluster_name: str,
    node_prefix: str | None,
    worker_options: Sequence[str] = (),
) -> int:
    """Run ``count`` worker processes of ``target`` until they stop; return the exit code.

    Raises:
        FileNotFoundError: if ``cluster`` is None and no server binary can be found (the
            message says what to install).
    """
    server = None
    if cluster is None:
        from ..remote._server import PrivateServer, find_server_binary

        find_server_binary()  # a clear FileNotFoundError before anything starts
        server = PrivateServer()
        await trio.to_thread.run_sync(server.start)
        cluster = server.url
        logger.info("started a private server for the workers at {} (stopped at the end)", cluster)
    try:
        command = [
            sys.executable,
            "-m",
            "triactor.launcher",
            "run",
            target,
            "--cluster",
            cluster,
            "--cluster-name",
            cluster_name,
            *worker_options,
        ]
        pool = WorkerPool(command, count, node_prefix=node_prefix or default_node_prefix())
        async with trio.open_nursery() as nursery:
            await nursery.start(serve_report, pool.render_status)
            nursery.start_soon(_stop_on_signals, pool)
            code = await pool.run()
            nursery.cancel_scope.cancel()
        return code
    finally:
        if server is not None:
            await trio.to_thread.run_sync(server.stop)


async def _stop_on_signals(pool: WorkerPool) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            logger.info(
                "{}: stopping the workers gracefully (send it again to stop them at once)",
                signal.Signals(signum).name,
            )
            pool.stop()
