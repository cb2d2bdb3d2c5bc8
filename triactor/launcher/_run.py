"""Running a supervision tree as a program: ``triactor.run``, ``run_tree`` and their shutdown.

One mechanism stops a running tree, whoever asks: a signal (SIGINT/SIGTERM), a portal leaving
its ``with`` block, or a direct :meth:`RunningTree.request_stop`. The first request starts a
graceful shutdown bounded by a deadline; the second request, or the deadline, cancels what is
left at once.
"""

from __future__ import annotations

import contextlib
import functools
import math
import signal
import threading
from collections.abc import Awaitable, Callable
from typing import Any, final

import attrs
import trio
from trio.lowlevel import enable_ki_protection

from .._logging import logger
from ..actors import ActorRef, ActorSystem, open_actor_system
from ..diagnostics import detect_blocking, serve_metrics
from ..supervision import Supervisor
from ._introspection import StatusWriter, report_on_signal, serve_status

__all__ = ["Monitor", "RunResult", "RunningTree", "run", "run_tree"]

_SHUTDOWN_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_SIGNAL_NAMES = frozenset(signum.name for signum in _SHUTDOWN_SIGNALS)

#: An async function run beside a tree while it runs (the CLI's live status line is one):
#: it gets the system and the root supervisor's ref, and is cancelled when the root stops.
Monitor = Callable[[ActorSystem, ActorRef], Awaitable[None]]


@final
@attrs.frozen
class RunResult:
    """How a run of a tree ended, from :func:`~triactor.run` and ``run_tree``.

    A run whose root supervisor gives up does not return one: it raises
    :class:`~triactor.RestartIntensityExceeded` instead.

    Attributes:
        stopped_by: who asked the tree to stop: a signal name (``"SIGINT"``, ``"SIGTERM"``),
            another requester's label (``"portal"``...), or None when the root supervisor
            stopped by itself.
        aborted_by: None when the shutdown was graceful; otherwise what cut it short:
            ``"deadline"`` (``shutdown_timeout`` passed), or the label of a second stop
            request (a second signal's name).
        shutdown_seconds: how long the shutdown took, from the first stop request until the
            root had stopped (None when nobody asked for the stop).
        dropped: queued messages that actors left unhandled as they stopped during the
            shutdown (each one is in dead letters).
        cancelled: actors cancelled during the shutdown because they did not stop by their
            own ``shutdown_timeout``.
    """

    stopped_by: str | None
    aborted_by: str | None = None
    shutdown_seconds: float | None = None
    dropped: int = 0
    cancelled: int = 0

    @property
    def clean(self) -> bool:
        """Whether the tree stopped gracefully (nothing cut short, dropped or cancelled)."""
        return self.aborted_by is None and not self.dropped and not self.cancelled


def _check_timeout(shutdown_timeout: float | None) -> float:
    if shutdown_timeout is None:
        return math.inf
    if not isinstance(shutdown_timeout, int | float) or isinstance(shutdown_timeout, bool):
        raise TypeError(f"shutdown_timeout must be a number of seconds, got {shutdown_timeout!r}")
    if not shutdown_timeout >= 0:
        raise ValueError(f"shutdown_timeout must be >= 0 seconds, got {shutdown_timeout}")
    return float(shutdown_timeout)


@final
class RunningTree:
    """A tree started by :func:`~triactor.launcher.run_tree`: its system, root and stop switch.

    ``await nursery.start(run_tree, tree)`` returns one; users never construct it. Its methods
    must be called from the Trio thread that runs the tree (a portal goes through
    ``trio.from_thread``).

    Attributes:
        system: the actor system the tree runs in.
        root: the root supervisor's ref (None until the tree has started).
    """

    def __init__(self, system: ActorSystem, nursery: trio.Nursery, shutdown_timeout: float) -> None:
        self.system = system
        self.root: ActorRef | None = None
        self._nursery = nursery
        self._shutdown_timeout = shutdown_timeout
        # Cancelled by a stop request that arrives while the tree is still starting.
        self._startup_scope = trio.CancelScope()
        self._requested_by: str | None = None
        self._requested_at = 0.0
        self._aborted_by: str | None = None
        self._finished = False  # the root has stopped: requests have nothing left to stop
        self._finished_at = 0.0

    def __repr__(self) -> str:
        where = self.root.path if self.root is not None else "starting"
        if self._aborted_by:
            state = f"aborted by {self._aborted_by}"
        elif self._finished:
            state = "stopped"
        elif self._requested_by:
            state = f"stopping ({self._requested_by})"
        else:
            state = "running"
        return f"<RunningTree {where} {state}>"

    def request_stop(self, by: str = "request") -> None:
        """Ask the tree to stop; ``by`` labels the requester in the log and the result.

        The first request starts the graceful shutdown: new spawns are refused, actors stop in
        reverse start order, each draining its mailbox and running ``on_stop`` within its own
        ``shutdown_timeout``; past the run's ``shutdown_timeout`` whatever is left is
        cancelled. A second request cancels every actor at once (``on_stop`` still runs,
        bounded). A request during startup cancels the startup; one after the tree has
        stopped does nothing. Returns at once.
        """
        if self._finished:
            return
        if self._requested_by is None:
            self._requested_by = by
            self._requested_at = trio.current_time()
            if self.root is None:
                logger.warning("{}: cancelling the tree while it starts", by)
                self._aborted_by = by
                self._startup_scope.cancel()
                return
            deadline = self._shutdown_timeout
            logger.info(
                "{}: stopping {} gracefully{}{}",
                by,
                self.root.path,
                f" within {deadline:g} s" if math.isfinite(deadline) else "",
                " (send it again to stop at once)" if by in _SIGNAL_NAMES else "",
            )
            self.system.begin_shutdown()
            if math.isfinite(deadline):
                self._nursery.start_soon(self._abort_at_deadline, deadline)
        else:
            self._abort(by)

    def abort(self, by: str = "request") -> None:
        """Cancel every actor now (the startup, if the tree is still starting). Returns at once.

        ``on_stop`` hooks still run, each bounded by its ``shutdown_timeout``. Does nothing
        once the tree has stopped.
        """
        if self._finished:
            return
        if self._requested_by is None:
            self._requested_by = by
            self._requested_at = trio.current_time()
        if self.root is None:
            self._aborted_by = by
            self._startup_scope.cancel()
            return
        self._abort(by)

    def _abort(self, by: str) -> None:
        if self._aborted_by is None:
            self._aborted_by = by
            logger.warning("{}: cancelling every actor now", by)
        self.system.abort()

    async def _abort_at_deadline(self, seconds: float) -> None:
        await trio.sleep(seconds)
        logger.warning(
            "the graceful shutdown did not finish within {:g} s (shutdown_timeout)", seconds
        )
        self._abort("deadline")

    def result(self) -> RunResult:
        """The ``RunResult`` of the run so far (final once ``run_tree`` has returned)."""
        seconds = None
        if self._requested_by is not None:
            end = self._finished_at if self._finished else trio.current_time()
            seconds = end - self._requested_at
        stats = self.system.statistics()
        return RunResult(
            self._requested_by,
            self._aborted_by,
            seconds,
            dropped=stats.dropped_in_shutdown,
            cancelled=stats.cancelled_in_shutdown,
        )

    async def _start(self, tree: Supervisor) -> ActorRef | None:
        with self._startup_scope:
            self.root = await self.system.spawn(tree)
            return self.root
        return None


async def _stop_on_signals(
    running: RunningTree, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    with trio.open_signal_receiver(*_SHUTDOWN_SIGNALS) as signals:
        task_status.started()
        async for signum in signals:
            running.request_stop(signal.Signals(signum).name)


@enable_ki_protection  # its exit stack and nurseries must be exited on every path
async def run_tree(
    tree: Supervisor,
    *,
    handle_signals: bool = True,
    shutdown_timeout: float | None = None,
    monitor: Monitor | None = None,
    blocking_threshold: float | None = None,
    metrics_port: int | None = None,
    cluster: Any = None,
    status_report: StatusWriter | None = None,
    asyncio: bool = False,
    task_status: trio.TaskStatus[RunningTree] = trio.TASK_STATUS_IGNORED,
) -> RunResult:
    """Run ``tree`` in a new actor system until it stops; the async core of :func:`~triactor.run`.

    Under ``await nursery.start(run_tree, tree)`` it returns the :class:`RunningTree` once the
    tree has started, so the caller can stop it (``request_stop``). Returns when the root
    supervisor has stopped: after a stop request (a signal, ``request_stop``), or by itself.

    Args:
        tree: the root supervisor spec.
        handle_signals: stop on SIGINT/SIGTERM (the first gracefully, the second at once);
            only possible in the main thread.
        shutdown_timeout: seconds the whole graceful shutdown may take before what is left is
            cancelled; default: no overall deadline (each actor is still bounded by its own
            ``shutdown_timeout``).
        monitor: ``async def monitor(system, root_ref)``, run beside the tree.
        blocking_threshold: log a warning (with the blocking line and stack) whenever a task
            holds the loop this many seconds or more; None: no detector.
        metrics_port: serve Prometheus metrics at ``http://127.0.0.1:PORT/metrics``.
        cluster: a :class:`~triactor.Cluster` or Redis URL to join (see ``open_actor_system``).
        status_report: what SIGUSR1 does, with ``handle_signals``: called with the system;
            default: print a snapshot of every actor to stderr.
        asyncio: run an asyncio loop beside the actors (see ``open_actor_system``).

    While the tree runs, ``triactor status PID`` gets the same snapshot from a Unix socket in
    a directory private to the user (no signal involved; see ``triactor status --help``).

    Returns:
        A :class:`~triactor.RunResult`: who stopped the tree and whether it stopped gracefully.

    Raises:
        RestartIntensityExceeded: if the root supervisor gives up.
        triactor.diagnostics.MetricsPortError: (an ``OSError``) if ``metrics_port`` cannot
            be bound.
        TypeError, ValueError: for a bad ``shutdown_timeout``.
        Exception: whatever an actor's constructor or ``on_start`` raised at startup.
    """
    deadline = _check_timeout(shutdown_timeout)
    async with contextlib.AsyncExitStack() as stack:
        if blocking_threshold is not None:
            await stack.enter_async_context(detect_blocking(blocking_threshold))
        result = await _run_system(
            tree,
            handle_signals,
            deadline,
            monitor,
            metrics_port,
            cluster,
            status_report,
            asyncio,
            task_status,
        )
    return result


@enable_ki_protection
async def _run_system(
    tree: Supervisor,
    handle_signals: bool,
    deadline: float,
    monitor: Monitor | None,
    metrics_port: int | None,
    cluster: Any,
    status_report: StatusWriter | None,
    asyncio: bool,
    task_status: trio.TaskStatus[RunningTree],
) -> RunResult:
    system_context = open_actor_system(cluster=cluster, asyncio=asyncio)
    async with system_context as system, trio.open_nursery() as nursery:
        running = RunningTree(system, nursery, deadline)
        try:
            if handle_signals:
                await nursery.start(_stop_on_signals, running)
                await nursery.start(report_on_signal, system, status_report)
            await nursery.start(serve_status, system)
            if metrics_port is not None:
                await nursery.start(serve_metrics, system, metrics_port)
            root = await running._start(tree)
            if root is not None:
                logger.info(
                    "tree {} started: {} actors running{}",
                    root.path,
                    system.statistics().actors,
                    "; SIGINT (Ctrl-C) or SIGTERM stops it gracefully" if handle_signals else "",
                )
                if monitor is not None:
                    nursery.start_soon(monitor, system, root)
            task_status.started(running)
            if root is not None:
                await system.watch(root)
        finally:
            running._finished, running._finished_at = True, trio.current_time()
            nursery.cancel_scope.cancel()  # the signal receiver, the monitor, the deadline timer
    result = running.result()
    if result.stopped_by is not None and result.clean:
        logger.info("tree stopped gracefully in {:.2f} s", result.shutdown_seconds)
    elif result.aborted_by is None and (result.dropped or result.cancelled):
        logger.warning(
            "tree stopped, but not cleanly: {} queued messages dropped (see dead letters), "
            "{} actors cancelled at their shutdown deadline",
            result.dropped,
            result.cancelled,
        )
    return result


def run(
    tree: Supervisor,
    *,
    handle_signals: bool | None = None,
    shutdown_timeout: float | None = None,
    monitor: Monitor | None = None,
    blocking_threshold: float | None = None,
    metrics_port: int | None = None,
    cluster: Any = None,
    asyncio: bool = False,
) -> RunResult:
    """Run a supervision tree as a program: start Trio, the system and ``tree``; block until done.

    The synchronous entry point (the ``triactor run`` command uses it)::

        triactor.run(Supervisor("root", children=[ChildSpec(Counter, name="counter")]))

    SIGINT (Ctrl-C) and SIGTERM start a graceful shutdown: no new actors are started, actors
    stop in reverse start order, each draining its mailbox and running ``on_stop`` within its
    ``shutdown_timeout``; past the overall ``shutdown_timeout`` (if given) what is left is
    cancelled. A second signal cancels every actor at once (``on_stop`` still runs, bounded).

    Args:
        tree: the root supervisor spec.
        handle_signals: install the SIGINT/SIGTERM handling; default: only when called from the
            main thread (signals can only be received there).
        shutdown_timeout: seconds the whole graceful shutdown may take; default: no overall
            deadline.
        monitor: ``async def monitor(system, root_ref)``, run beside the tree.
        blocking_threshold: warn about tasks holding the loop this long (see
            :func:`~triactor.launcher.run_tree`).
        metrics_port: serve Prometheus metrics on this loopback port.
        cluster: a :class:`~triactor.Cluster` or Redis URL: the tree's exported children
            (``ChildSpec(..., export=True)``) become reachable from other processes.
        asyncio: run an asyncio loop beside the actors, so that handlers can await asyncio
            libraries with :func:`triactor.run_asyncio` (needs ``triactor[asyncio]``).

    Returns:
        A :class:`~triactor.RunResult` once the tree has stopped: ``result.clean`` says whether
        gracefully (nothing dropped or cancelled), ``result.stopped_by`` who asked.

    Raises:
        RestartIntensityExceeded: if the root supervisor gives up; ``str()`` names it, and
            ``report()`` adds the child, the restart window and the last traceback.
        TypeError: if ``tree`` is not a :class:`~triactor.Supervisor`, or ``shutdown_timeout``
            is not a number.
        ValueError: if ``shutdown_timeout`` is negative.
        Exception: whatever an actor's constructor or ``on_start`` raised at startup.
    """
    if not isinstance(tree, Supervisor):
        raise TypeError(
            f"triactor.run takes a Supervisor, got {tree!r}; wrap actors as "
            "Supervisor('root', [ChildSpec(MyActor, name=...)])"
        )
    _check_timeout(shutdown_timeout)
    if handle_signals is None:
        handle_signals = threading.current_thread() is threading.main_thread()
    return trio.run(
        functools.partial(
            run_tree,
            tree,
            handle_signals=handle_signals,
            shutdown_timeout=shutdown_timeout,
            monitor=monitor,
            blocking_threshold=blocking_threshold,
            metrics_port=metrics_port,
            cluster=cluster,
            asyncio=asyncio,
        )
    )
