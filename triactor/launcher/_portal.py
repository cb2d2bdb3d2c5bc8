"""Embedding in a synchronous program: ``start_in_thread`` and the ``ActorPortal`` it returns."""

from __future__ import annotations

import atexit
import contextlib
import functools
import threading
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, NoReturn, TypeVar, final

import trio

from .._errors import ActorStopped
from .._groups import unwrapped_group
from .._logging import logger
from .._safe import add_note, safe_repr
from ..actors import ActorRef, SystemStatistics
from ..supervision import Supervisor
from ._run import RunningTree, RunResult, _check_timeout, run_tree

__all__ = ["ActorPortal", "start_in_thread"]

T = TypeVar("T")

_STOP_LABEL = "portal closed"


@final
class ActorPortal:
    """A door into an actor system that runs on a Trio loop in a background thread.

    Ordinary (non-Trio) threads use it to talk to actors: :meth:`ask` and :meth:`tell` block
    the calling thread, never the actors. Any number of threads may use one portal at once.
    Get one from :func:`start_in_thread`; never construct it::

        with triactor.start_in_thread(tree) as portal:
            portal.tell("counter", Add(2))
            total = portal.ask("counter", Total(), timeout=1.0)

    A portal also lives without a ``with`` block, for a web app that makes it at import and
    uses it from every request thread: ``portal = triactor.start_in_thread(tree)``, then
    ``portal.close()`` to stop the tree gracefully. One never closed is closed at interpreter
    exit, with the same graceful shutdown.

    Errors never vanish: an exception raised by a handler is raised in the thread that asked;
    an error that stops the whole system (the root supervisor giving up with
    :class:`~triactor.RestartIntensityExceeded`) is raised by every portal call after it, by
    :meth:`wait`, and when the ``with`` block is left.

    It is not a way into the system from its own Trio thread: inside actors, use refs.
    """

    def __init__(
        self,
        tree: Supervisor,
        shutdown_timeout: float | None,
        thread_name: str,
        cluster: Any = None,
        asyncio: bool = False,
    ) -> None:
        self._cluster = cluster
        self._tree = tree
        self._shutdown_timeout = shutdown_timeout
        self._asyncio = asyncio
        self._ready = threading.Event()  # the tree has started, or the run has ended
        self._done = threading.Event()  # the run has ended
        self._running: RunningTree | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._result: RunResult | None = None
        self._error: BaseException | None = None
        self._stop_requested = False
        # A Ctrl-C in the caller's thread may come before the loop is reachable: an abort
        # requested then is noted here and honoured by the loop as soon as it starts.
        self._lock = threading.Lock()
        self._abort_requested = False
        self._main_scope: trio.CancelScope | None = None
        # Daemon: interpreter exit does not wait for it, so the atexit hook can stop the tree.
        self._thread = threading.Thread(target=self._thread_main, name=thread_name, daemon=True)

    def __repr__(self) -> str:
        if not self._ready.is_set():
            state = "starting"
        elif self._error is not None:
            state = f"failed with {safe_repr(self._error)}"
        elif self._done.is_set():
            state = "stopped"
        elif self._stop_requested:
            state = "stopping"
        else:
            state = "running"
        return f"<ActorPortal to tree {self._tree.name!r} {state}, on thread {self._thread.name!r}>"

    # -- the background thread ------------------------------------------------------------------

    def _thread_main(self) -> None:
        try:
            self._result = trio.run(self._main)
        except BaseException as exc:
            self._error = exc
        finally:
            self._done.set()
            self._ready.set()

    async def _main(self) -> RunResult | None:
        run = functools.partial(
            run_tree,
            self._tree,
            handle_signals=False,
            shutdown_timeout=self._shutdown_timeout,
            cluster=self._cluster,
            asyncio=self._asyncio,
        )
        result: RunResult | None = None

        async def run_and_keep(task_status: trio.TaskStatus[RunningTree]) -> None:
            nonlocal result
            result = await run(task_status=task_status)

        with trio.CancelScope() as scope:
            with self._lock:
                self._token = trio.lowlevel.current_trio_token()
                self._main_scope = scope
                if self._abort_requested:
                    scope.cancel()
            with unwrapped_group():
                async with trio.open_nursery() as nursery:
                    self._running = await nursery.start(run_and_keep)
                    self._ready.set()
        return result  # None only if an abort cut the startup short

    def _start(self) -> None:
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            self._raise_error()
        atexit.register(self._close_at_exit)

    def _close_at_exit(self) -> None:
        if self._done.is_set():
            return
        logger.info("interpreter exit: stopping the portal's tree {!r}", self._tree.name)
        try:
            self.stop()
        except Exception as exc:
            logger.opt(exception=exc).error(
                "the actor system of tree {!r} failed: {}", self._tree.name, safe_repr(exc)
            )

    def _abort(self) -> None:
        """Cancel every actor now (or the startup, if the tree is not up yet). Returns at once."""
        with self._lock:
            self._abort_requested = True
            token, scope, running = self._token, self._main_scope, self._running
        if token is None or self._done.is_set():
            return  # the loop is not up yet (it will see the request) or has ended
        self._stop_requested = True
        with contextlib.suppress(trio.RunFinishedError):  # it may have stopped meanwhile
            if running is not None:
                token.run_sync_soon(running.abort, "KeyboardInterrupt")
            elif scope is not None:
                token.run_sync_soon(scope.cancel)

    def _abandon(self) -> None:
        """Abort and wait for the thread: after a Ctrl-C, or a start that failed."""
        self._abort()
        if self._thread.ident is not None:
            self._thread.join()

    # -- calls from other threads ---------------------------------------------------------------

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _raise_stopped(self) -> NoReturn:
        self._raise_error()
        raise ActorStopped(
            f"the actor system of tree {self._tree.name!r} has stopped; "
            "the portal cannot reach it any more"
        )

    def _call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        if threading.get_ident() == self._thread.ident:
            raise RuntimeError(
                "ActorPortal methods block the calling thread: call them from other threads, "
                "never from the actor system's own Trio thread (inside actors, use refs)"
            )
        if self._done.is_set() or self._token is None:
            self._raise_stopped()
        try:
            return trio.from_thread.run(fn, *args, trio_token=self._token)
        except (trio.RunFinishedError, trio.Cancelled):
            # The system stopped under the call: report why it stopped.
            self._done.wait()
            self._raise_stopped()

    def _resolve(self, target: str | ActorRef) -> ActorRef:
        if isinstance(target, ActorRef):
            return target
        if not isinstance(target, str):
            raise TypeError(f"expected an actor name, path or ActorRef, got {target!r}")
        assert self._running is not None
        return self._running.system.lookup(target)

    def ask(
        self,
        target: str | ActorRef,
        message: object,
        *,
        timeout: float | None = None,
        priority: int = 0,
    ) -> Any:
        """Send ``message`` to an actor and block this thread until the handler's reply.

        ``target`` is an actor's name, its path (``"/root/counter"``) or an
        :class:`~triactor.ActorRef`. Same semantics as :meth:`ActorRef.ask
        <triactor.ActorRef.ask>`.

        Raises:
            trio.TooSlowError: if ``timeout`` passes first (the late reply is dead-lettered).
            ActorNotFound: if no live actor has that name.
            ActorStopped: if the actor (or the whole system) has stopped.
            MailboxFull: if the mailbox is full and its overflow policy refuses the request.
            Exception: whatever the handler raised, with notes naming the actor.
            RestartIntensityExceeded: if the system has stopped because its root gave up.
            RuntimeError: if called from the actor system's own thread.
        """
        return self._call(self._ask, target, message, timeout, priority)

    async def _ask(
        self, target: str | ActorRef, message: object, timeout: float | None, priority: int
    ) -> Any:
        return await self._resolve(target).ask(message, timeout=timeout, priority=priority)

    def tell(self, target: str | ActorRef, message: object, *, priority: int = 0) -> None:
        """Send ``message`` to an actor without waiting for it to be handled.

        Blocks this thread only while a full ``Overflow.BLOCK`` mailbox has no room
        (backpressure reaches the caller). A message for a stopped actor goes to dead letters.

        Raises:
            ActorNotFound: if no live actor has that name.
            MailboxFull: if the mailbox is full and its policy is ``Overflow.FAIL``.
            RestartIntensityExceeded: if the system has stopped because its root gave up.
            ActorStopped: if the system has stopped.
            RuntimeError: if called from the actor system's own thread.
        """
        self._call(self._tell, target, message, priority)

    async def _tell(self, target: str | ActorRef, message: object, priority: int) -> None:
        await self._resolve(target).tell(message, priority=priority)

    def try_tell(self, target: str | ActorRef, message: object, *, priority: int = 0) -> bool:
        """Send ``message`` if that needs no waiting; return whether it was queued.

        Raises the same errors as :meth:`tell`, except :class:`~triactor.MailboxFull`.
        """
        return self._call(self._try_tell, target, message, priority)

    async def _try_tell(self, target: str | ActorRef, message: object, priority: int) -> bool:
        return self._resolve(target).try_tell(message, priority=priority)

    def lookup(self, name: str) -> ActorRef:
        """Return the ref of the live actor with this name or path (see ``system.lookup``).

        The ref can be passed back to :meth:`ask` and :meth:`tell` to skip the lookup.

        Raises:
            ActorNotFound: if no live actor has that name.
            ActorStopped, RestartIntensityExceeded: if the system has stopped.
        """
        return self._call(self._lookup, name)

    async def _lookup(self, name: str) -> ActorRef:
        return self._resolve(name)

    def statistics(self) -> SystemStatistics:
        """Return the system's :class:`~triactor.SystemStatistics` snapshot.

        Raises:
            ActorStopped, RestartIntensityExceeded: if the system has stopped.
        """
        return self._call(self._statistics)

    async def _statistics(self) -> SystemStatistics:
        assert self._running is not None
        return self._running.system.statistics()

    def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``await fn(system, *args)`` on the actor system's loop; return its result.

        For what ask/tell do not cover: ``portal.call(ActorSystem.start_child, "root", spec)``,
        ``portal.call(ActorSystem.which_children, "root")``...

        Raises:
            Exception: whatever ``fn`` raised.
            ActorStopped, RestartIntensityExceeded: if the system has stopped.
        """

        async def with_system() -> T:
            assert self._running is not None
            return await fn(self._running.system, *args)

        return self._call(with_system)

    # -- stopping -------------------------------------------------------------------------------

    def wait(self, timeout: float | None = None) -> RunResult:
        """Block until the actor system has stopped (by itself, or after :meth:`stop`).

        Returns:
            The run's :class:`~triactor.RunResult`.

        Raises:
            TimeoutError: if ``timeout`` seconds pass first.
            RestartIntensityExceeded: (or any error that ended the system) if it failed.
        """
        if not self._done.wait(timeout):
            raise TimeoutError(f"the actor system of tree {self._tree.name!r} is still running")
        self._thread.join()
        if self._result is None:  # failed, or aborted while starting
            self._raise_stopped()
        return self._result

    def stop(self) -> RunResult:
        """Shut the system down gracefully and wait for it; leaving the ``with`` block does this.

        Actors stop in reverse start order, each draining its mailbox within its
        ``shutdown_timeout`` (and the whole shutdown within the portal's ``shutdown_timeout``).
        A ``KeyboardInterrupt`` while waiting cancels every actor at once, then propagates.
        Calling it again after the system has stopped just returns (or raises) the same.

        Returns:
            The run's :class:`~triactor.RunResult`.

        Raises:
            RestartIntensityExceeded: (or any error that ended the system) if it failed.
        """
        try:
            atexit.unregister(self._close_at_exit)
            self._request_stop()
            return self.wait()
        except KeyboardInterrupt:
            self._abandon()  # cancel every actor now, and wait for them (bounded by on_stop)
            raise

    def close(self) -> RunResult:
        """Stop the system gracefully and wait for it: :meth:`stop`, for a portal kept open.

        What a program that made its portal without ``with`` calls when it is done (it is
        called at interpreter exit otherwise). Closing a closed portal returns (or raises)
        the same again.
        """
        return self.stop()

    def __enter__(self) -> ActorPortal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Each stop sits in a try whose handler leaves no thread behind, even when a Ctrl-C
        # lands at the first instruction of the call.
        if exc is None:
            try:
                self.stop()
            except BaseException:
                self._abandon()
                raise
            return
        try:
            self.stop()
        except Exception as error:
            if error is not exc:
                add_note(exc, f"the actor system had also failed: {safe_repr(error)}")
        except BaseException:
            self._abandon()
            raise

    def _request_stop(self) -> None:
        self._ready.wait()
        if self._done.is_set() or self._running is None or self._token is None:
            return
        self._stop_requested = True
        with contextlib.suppress(trio.RunFinishedError):  # it may have stopped meanwhile
            trio.from_thread.run_sync(
                self._running.request_stop, _STOP_LABEL, trio_token=self._token
            )


def start_in_thread(
    tree: Supervisor,
    *,
    shutdown_timeout: float | None = None,
    thread_name: str | None = None,
    cluster: Any = None,
    asyncio: bool = False,
) -> ActorPortal:
    """Run ``tree`` on a Trio loop in a background thread, for synchronous programs.

    Returns an :class:`ActorPortal` once the tree has started; ordinary threads talk to the
    actors through it. Used as a context manager, leaving the ``with`` block shuts the system
    down gracefully (as :meth:`ActorPortal.stop`) and joins the thread::

        with triactor.start_in_thread(tree) as portal:
            portal.tell("counter", Add(2))
            assert portal.ask("counter", Total(), timeout=1.0) == 7

    Without ``with`` (a Flask or Django app making its portal at import), call
    ``portal.close()`` when done; a portal never closed is closed gracefully at interpreter
    exit.

    If the system failed (its root supervisor gave up), leaving the block (or ``close``)
    raises that error; if the block itself raised, its exception propagates with a note about
    the failure.

    It installs no signal handlers and writes nothing itself: its log records go to the
    standard ``logging`` module (see ``triactor.configure_logging``). ``triactor status PID``
    reads a snapshot of its actors through a Unix socket, without signalling the process.

    Args:
        tree: the root supervisor spec.
        shutdown_timeout: seconds the whole graceful shutdown may take before what is left is
            cancelled; default: no overall deadline (each actor keeps its own timeout).
        thread_name: the background thread's name; default ``"triactor-<root name>"``.
        cluster: a :class:`~triactor.Cluster` or Redis URL to join (see ``open_actor_system``).
        asyncio: run an asyncio loop beside the actors, so that handlers can await asyncio
            libraries with :func:`triactor.run_asyncio` (needs ``triactor[asyncio]``). An
            asyncio *program* uses the portal from its own loop through
            ``await asyncio.to_thread(portal.ask, ...)``; it needs no bridge.

    Raises:
        TypeError: if ``tree`` is not a :class:`~triactor.Supervisor`, or ``shutdown_timeout``
            is not a number.
        ValueError: if ``shutdown_timeout`` is negative.
        Exception: whatever an actor's constructor or ``on_start`` raised at startup.
    """
    if not isinstance(tree, Supervisor):
        raise TypeError(
            f"start_in_thread takes a Supervisor, got {tree!r}; wrap actors as "
            "Supervisor('root', [ChildSpec(MyActor, name=...)])"
        )
    _check_timeout(shutdown_timeout)
    name = thread_name or f"triactor-{tree.name}"
    portal = ActorPortal(tree, shutdown_timeout, name, cluster, asyncio)
    try:
        portal._start()
    except BaseException:
        portal._abandon()  # the start failed, or a Ctrl-C cut it short: no thread left behind
        raise
    return portal
