"""The running side of supervision: the supervisor actor that starts, watches and restarts.

A running supervisor is an actor. Its children run as tasks in a nursery that the supervisor's
incarnation holds open; when a child's incarnation ends, the task that ran it posts a
``_ChildExited`` notice to the supervisor's control lane, and the supervisor handles it like
any message, one at a time. Restart decisions therefore never race each other.

The children's cells (their names, refs and mailboxes) live in a ``_Children`` registry that
is passed as a constructor argument, so it survives restarts of the supervisor itself.
"""

from __future__ import annotations

import enum
import functools
import math
import random
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, final

import attrs
import outcome
import trio
from trio.lowlevel import enable_ki_protection

from .._errors import ActorNotFound, RestartIntensityExceeded
from .._groups import unwrapped_group
from .._safe import safe_repr
from ..actors import Actor, ActorRef, handler
from ..actors._cell import ActorCell, ActorState, ExitReason
from ..actors._system_message import SystemMessage
from ..actors._waits import starting
from ._repeats import StartFailures
from ._spec import Backoff, ChildSpec, Restart, Strategy, SubtreeSpec, Supervisor

if TYPE_CHECKING:
    from ..actors import ActorSystem

__all__ = [
    "ChildCounts",
    "ChildInfo",
    "ChildState",
    "SupervisorActor",
    "add_static_children",
    "spawn_supervisor",
]


class ChildState(enum.Enum):
    """Where a supervised child is.

    Attributes:
        RUNNING: its current incarnation is running.
        RESTARTING: it exited and waits (backoff, or the strategy) to be started again.
        STOPPED: it exited for good (a transient child that stopped normally).
    """

    RUNNING = "running"
    RESTARTING = "restarting"
    STOPPED = "stopped"


@final
@attrs.frozen
class ChildInfo:
    """One child of a supervisor, as ``system.which_children`` reports it.

    Attributes:
        name: the child's name.
        path: the child's path.
        ref: the child's ref (valid across its restarts).
        supervisor: whether the child is itself a supervisor.
        state: see :class:`ChildState`.
        restart: its restart type.
        restarts: how many times it was restarted.
        dynamic: whether it was added at run time with ``start_child``.
    """

    name: str
    path: str
    ref: ActorRef
    supervisor: bool
    state: ChildState
    restart: Restart
    restarts: int
    dynamic: bool


@final
@attrs.frozen
class ChildCounts:
    """How many children a supervisor has, by kind and state (``system.count_children``).

    Attributes:
        specs: all children it knows (running, restarting or stopped).
        running: children whose :class:`ChildState` is ``RUNNING``.
        restarting: children waiting to be started again.
        stopped: children that exited for good.
        supervisors: children that are supervisors.
        workers: children that are plain actors.
    """

    specs: int
    running: int
    restarting: int
    stopped: int
    supervisors: int
    workers: int


# -- system messages the supervisor handles ------------------------------------------------------


@final
class _ChildExited(SystemMessage):
    __slots__ = ("error", "incarnation", "name", "reason")

    def __init__(
        self, name: str, incarnation: int, reason: ExitReason, error: BaseException | None
    ) -> None:
        self.name = name
        self.incarnation = incarnation
        self.reason = reason
        self.error = error


@final
class _RestartDue(SystemMessage):
    __slots__ = ("names", "token")

    def __init__(self, names: tuple[str, ...], token: object) -> None:
        self.names = names
        self.token = token


@final
class StartChild(SystemMessage):
    """Ask a supervisor to start a dynamic child (``system.start_child`` sends it)."""

    __slots__ = ("spec",)

    def __init__(self, spec: object) -> None:
        self.spec = spec  # checked by the supervisor: it answers a TypeError for a non-spec


@final
class TerminateChild(SystemMessage):
    """Ask a supervisor to stop a child for good (``system.terminate_child`` sends it)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


@final
class WhichChildren(SystemMessage):
    """Ask a supervisor for its children's :class:`ChildInfo` list."""

    __slots__ = ()


# -- bookkeeping ---------------------------------------------------------------------------------

#: The backoff before retrying a child that failed to start, when neither its spec nor its
#: supervisor gives one: a constructor that fails every time is not retried in a hot loop.
_START_FAILURE_BACKOFF = Backoff(min=0.05, max=2.0, jitter=0.2)


@final
class _Child:
    """A supervisor's record of one child: spec, cell, and restart bookkeeping."""

    __slots__ = (
        "attempts",
        "cell",
        "dynamic",
        "error",
        "incarnation",
        "live",
        "restart",
        "restart_token",
        "running",
        "spec",
        "started_at",
        "state",
    )

    def __init__(
        self, spec: ChildSpec | Supervisor | SubtreeSpec, cell: ActorCell, dynamic: bool
    ) -> None:
        self.spec = spec
        self.cell = cell
        self.dynamic = dynamic
        self.restart = spec.restart
        self.state = ChildState.RESTARTING  # not started yet
        self.incarnation = 0
        # The incarnation whose exit notice the supervisor still expects, or None when the
        # supervisor itself stopped it (its notice is then stale and ignored).
        self.live: int | None = None
        #: Whether an incarnation of the child is running right now.
        self.running = False
        #: The delayed-restart decision this child waits for (see ``_RestartDue``).
        self.restart_token: object = None
        self.attempts = 0
        self.started_at = -math.inf
        #: What ended its last incarnation, or failed its last start (None: a normal exit).
        self.error: BaseException | None = None

    def final_exit(self) -> tuple[ExitReason, BaseException | None]:
        """How the child ended, for its death notice when it is stopped for good now."""
        reason = self.cell.last_exit or ExitReason.NORMAL
        return reason, self.error if reason is ExitReason.CRASHED else None

    @property
    def backoff(self) -> Backoff | None:
        """The child's own backoff, if its spec has one."""
        return self.spec.backoff if isinstance(self.spec, ChildSpec) else None

    def info(self) -> ChildInfo:
        """This child as a :class:`ChildInfo`."""
        return ChildInfo(
            name=self.cell.name,
            path=self.cell.path,
            ref=self.cell.ref,
            supervisor=not isinstance(self.spec, ChildSpec),
            state=self.state,
            restart=self.restart,
            restarts=self.cell.restarts,
            dynamic=self.dynamic,
        )


@final
class _Children:
    """The children of one supervisor, in start order; outlives the supervisor's restarts."""

    __slots__ = ("by_name", "finalizer_installed")

    def __init__(self) -> None:
        self.by_name: dict[str, _Child] = {}
        self.finalizer_installed = False

    def ordered(self) -> list[_Child]:
        """The children in start order."""
        return list(self.by_name.values())

    def finalize_all(self, _: ActorCell) -> None:
        """Stop every child for good (the supervisor itself stopped for good)."""
        # The supervisor stopped for good: so do its children (and, through their own
        # finalizers, their subtrees), the last started first.
        for child in reversed(self.ordered()):
            child.cell.finalize(*child.final_exit())
        self.by_name.clear()


def _cell_options(spec: ChildSpec | Supervisor) -> dict[str, Any]:
    if isinstance(spec, Supervisor):
        return {
            "shutdown_timeout": math.inf if spec.shutdown_timeout is None else spec.shutdown_timeout
        }
    return {
        "mailbox_capacity": spec.mailbox_capacity,
        "overflow": spec.overflow,
        "max_concurrency": spec.max_concurrency,
        "shutdown_timeout": spec.shutdown_timeout,
        "resume_on": spec.resume_on,
    }


def _new_child_cell(
    system: ActorSystem, spec: ChildSpec | Supervisor | SubtreeSpec, parent: str
) -> ActorCell:
    if isinstance(spec, SubtreeSpec):
        return spec._new_cell(system, parent)
    if isinstance(spec, Supervisor):
        return system._new_cell(
            SupervisorActor,
            (spec, _Children()),
            {},
            name=spec.name,
            parent_path=parent,
            **_cell_options(spec),
        )
    return system._new_cell(
        spec.actor,
        spec.args,
        dict(spec.kwargs),
        name=spec.name,
        parent_path=parent,
        export=spec.export,
        **_cell_options(spec),
    )


def add_static_children(
    system: ActorSystem, children: _Children, spec: Supervisor, parent_path: str
) -> None:
    """Register the cells of ``spec``'s children under ``parent_path`` (none is started).

    For a subtree whose children must exist before its first start (a router's routees take
    messages as soon as the router's name is registered). All or nothing: if one cannot be
    registered (a taken name), those already registered are removed again and the error is
    raised.
    """
    try:
        for child_spec in spec.children:
            cell = _new_child_cell(system, child_spec, parent_path)
            children.by_name[child_spec.name] = _Child(child_spec, cell, dynamic=False)
    except BaseException:
        # A restart must not come back with only some children.
        for added in reversed(children.ordered()):
            added.cell.finalize(ExitReason.CRASHED)
        children.by_name.clear()
        raise


async def spawn_supervisor(system: ActorSystem, spec: Supervisor) -> ActorRef:
    """Start ``spec`` as a top-level tree of ``system`` and return the root supervisor's ref."""
    return await system.spawn(
        SupervisorActor, spec, _Children(), name=spec.name, **_cell_options(spec)
    )


# -- the supervisor actor ------------------------------------------------------------------------


class SupervisorActor(Actor):
    """The actor that runs a :class:`~triactor.Supervisor` spec. Made by the runtime only."""

    mailbox_capacity = 1000

    def __init__(self, spec: Supervisor, children: _Children) -> None:
        self._spec = spec
        self._children = children
        self._nursery: trio.Nursery | None = None
        self._rng = random.Random()
        self._start_failures = StartFailures()
        # Trio times of the restarts inside the intensity window; a restarted supervisor
        # starts with a fresh budget, as in OTP.
        self._restart_times: deque[float] = deque()
        cell = self._triactor_cell
        if not children.finalizer_installed:
            children.finalizer_installed = True
            cell.add_watcher(children.finalize_all)
        # Every incarnation starts from the static specs, as in OTP: the children that survive
        # a restart keep their cells (name, ref, queued messages); those stopped for good, or
        # removed (temporary ones), get new cells. Dynamic children ended with the previous
        # incarnation.
        try:
            for child_spec in spec.children:
                child = children.by_name.get(child_spec.name)
                if child is not None and child.cell.state is not ActorState.STOPPED:
                    continue
                children.by_name.pop(child_spec.name, None)
                self._add(child_spec, dynamic=False)
        except BaseException:
            # All or nothing: a restart must not come back with only some children.
            for added in reversed(children.ordered()):
                added.cell.finalize(ExitReason.CRASHED)
            children.by_name.clear()
            raise
        children.by_name = {c.name: children.by_name[c.name] for c in spec.children}

    # -- lifetime -------------------------------------------------------------------------------

    # KI-protected: the nursery must be exited on every path, even a Ctrl-C's. Everything the
    # supervisor's task runs is internal, except the children's constructors, which
    # ``ActorCell.construct`` runs unprotected (a Ctrl-C still interrupts them in place).
    @enable_ki_protection
    async def _triactor_run(self, start_and_serve: Any, instance: Actor, task_status: Any) -> None:
        try:
            with unwrapped_group():
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    try:
                        await start_and_serve(instance, task_status)
                    finally:
                        try:
                            await self._stop_children(
                                self._children.ordered(), drain=self._triactor_cell.draining
                            )
                        finally:
                            nursery.cancel_scope.cancel()  # pending backoff timers
        finally:
            # Dynamic children do not outlive the incarnation that started them (OTP: a
            # restarted supervisor starts from its static specs). Their tasks are done here.
            for child in self._children.ordered():
                if child.dynamic:
                    self._remove(child, *child.final_exit())

    async def on_start(self) -> None:
        """Start the children in spec order."""
        await self._start_group(self._children.ordered())

    # -- children's lives -----------------------------------------------------------------------

    def _add(self, spec: ChildSpec | Supervisor | SubtreeSpec, *, dynamic: bool) -> _Child:
        cell = _new_child_cell(self.system, spec, self.path)
        child = _Child(spec, cell, dynamic)
        self._children.by_name[spec.name] = child
        return child

    def _remove(
        self, child: _Child, reason: ExitReason, error: BaseException | None = None
    ) -> None:
        self._children.by_name.pop(child.cell.name, None)
        child.cell.finalize(reason, error)

    async def _start(self, child: _Child) -> None:
        """Start one incarnation of ``child``; raises what its constructor or on_start raised."""
        assert self._nursery is not None
        cell = child.cell
        if child.incarnation:
            cell.restarts += 1
        child.incarnation += 1
        instance = cell.construct()
        # Running from here on: the incarnation may even end before nursery.start returns
        # (a queued stop request), and its exit notice must then not look stale.
        child.running = True
        child.state = ChildState.RUNNING
        child.live = child.incarnation
        try:
            with starting(cell):  # names a deadlock through the child's on_start
                await self._nursery.start(
                    self._run_child, child, instance, child.incarnation, name=cell.path
                )
        except BaseException as exc:
            child.running = False
            child.state = ChildState.RESTARTING
            child.live = None
            child.error = exc
            raise
        child.started_at = trio.current_time()
        failed = self._start_failures.clear(cell.path)
        if failed > 1:
            self.log.info("child {} started after failing {} times in a row", cell.path, failed)

    async def _run_child(
        self, child: _Child, instance: Actor, incarnation: int, task_status: trio.TaskStatus[None]
    ) -> None:
        error: BaseException | None = None
        try:
            reason = await child.cell.run_incarnation(instance, task_status)
        except Exception as exc:
            if not child.cell.started:
                raise  # a start failure: raised to _start, which counts it as a crash
            reason, error = ExitReason.CRASHED, exc
        finally:
            child.running = False
        child.error = error
        if (
            error is None
            and child.restart is not Restart.PERMANENT
            and child.live == incarnation
            and reason is ExitReason.NORMAL
        ):
            # A normal exit ends a transient or temporary child for good, by rule: mark it now,
            # so that a ref.stop() waiting on it returns to a stopped actor. The supervisor's
            # bookkeeping follows when it handles the notice.
            child.cell.finalize(reason)
        # Cancelled, KeyboardInterrupt and SystemExit propagate: never supervised.
        self._triactor_cell.mailbox.put_control(
            _ChildExited(child.cell.name, incarnation, reason, error)
        )

    async def _start_group(self, group: list[_Child]) -> None:
        """Start ``group`` in spec order; a start failure is handled as that child's crash.

        Children that stopped for good (a transient child's normal exit) stay stopped.
        """
        for index, child in enumerate(group):
            if (
                self._children.by_name.get(child.cell.name) is not child
                or child.state is not ChildState.RESTARTING
            ):
                continue  # removed, stopped for good, or already started by a nested decision
            try:
                await self._start(child)
                continue
            except Exception as exc:
                failure = exc
            # Handled outside the except clause, so that a retry that fails again does not
            # chain its traceback onto this one. The crash handling restarts the failed
            # child's own group; the rest of this group that it does not cover must still be
            # started here.
            covered = (
                set()
                if child.restart is Restart.TEMPORARY
                else set(map(id, self._restart_group(child)))
            )
            await self._crashed(child, failure, during_start=True)
            await self._start_group([c for c in group[index + 1 :] if id(c) not in covered])
            return

    async def _stop_child(self, child: _Child, *, drain: bool = False) -> None:
        """Stop one running child within its ``shutdown_timeout`` (then it is cancelled).

        A crash that ends it meanwhile (or just before, its notice not handled yet) is logged.
        With ``drain`` (a graceful shutdown) such a child is restarted alone, within the
        restart budget, to finish its mailbox by the same deadline.
        """
        if child.state is not ChildState.RUNNING:
            return
        cell = child.cell
        deadline = trio.current_time() + cell.shutdown_timeout
        while True:
            child.live = None  # its exit notice, when it comes, is stale
            child.state = ChildState.RESTARTING
            if cell.state is ActorState.STOPPED:
                return
            if child.running:
                await cell.request_stop(drain=drain, deadline=deadline).wait()
            if cell.last_exit is not ExitReason.CRASHED or not cell.ref.is_alive:
                return
            if not drain:
                self._log_exit(
                    child,
                    ExitReason.CRASHED,
                    child.error,
                    False,
                    "it was being stopped (not counted as a restart)",
                )
                return
            if not await self._restart_to_drain(child, deadline):
                return

    async def _restart_to_drain(self, child: _Child, deadline: float) -> bool:
        """Restart ``child``, which crashed during a graceful shutdown, to finish its mailbox.

        Only that child is restarted, whatever the strategy (its siblings are stopping too),
        after its backoff, within the restart budget. Returns whether it runs again (with its
        drain requested); False if it is temporary or the deadline passed first.

        Raises:
            RestartIntensityExceeded: if the restart budget is spent.
        """
        error, during_start = child.error, False
        while True:
            if child.restart is Restart.TEMPORARY or trio.current_time() >= deadline:
                self._log_exit(child, ExitReason.CRASHED, error, during_start, "not restarted")
                if child.restart is Restart.TEMPORARY:
                    self._remove(child, ExitReason.CRASHED, error)
                return False
            count = self._charge()
            if count > self._spec.max_restarts:
                await self._give_up(child, error, count)
            delay = self._backoff_delay(child, during_start=during_start)
            self._log_exit(
                child,
                ExitReason.CRASHED,
                error,
                during_start,
                f"restarting it{f' in {delay:.3g} s' if delay else ''} to finish its mailbox "
                f"before it stops (restart {count} of {self._spec.max_restarts} within "
                f"{self._spec.within:g} s)",
            )
            with trio.move_on_at(deadline):  # the backoff and on_start: within the deadline
                await trio.sleep(delay)
                try:
                    await self._start(child)
                except Exception as exc:
                    error, during_start = exc, True
                    continue
                child.cell.request_stop(drain=True, deadline=deadline)
                return True
            return False

    @enable_ki_protection  # its nursery must be exited on every path, even a Ctrl-C's
    async def _stop_children(self, children: Iterable[_Child], *, drain: bool = False) -> None:
        """Stop dynamic children in parallel, then the static ones in reverse start order."""
        ordered = list(children)
        dynamic = [c for c in ordered if c.dynamic and c.state is ChildState.RUNNING]
        if dynamic:
            async with trio.open_nursery() as nursery:
                for child in dynamic:
                    nursery.start_soon(functools.partial(self._stop_child, child, drain=drain))
        for child in reversed(ordered):
            if not child.dynamic:
                await self._stop_child(child, drain=drain)

    # -- decisions ------------------------------------------------------------------------------

    def _restart_group(self, child: _Child) -> list[_Child]:
        ordered = self._children.ordered()
        strategy = self._spec.strategy
        if strategy is Strategy.ONE_FOR_ONE:
            return [child]
        if strategy is Strategy.ONE_FOR_ALL:
            return ordered
        return ordered[ordered.index(child) :]

    def _charge(self) -> int:
        """Count one restart in the intensity window; return the restarts now in the window."""
        now = trio.current_time()
        times = self._restart_times
        while times and times[0] <= now - self._spec.within:
            times.popleft()
        times.append(now)
        return len(times)

    async def _give_up(
        self, child: _Child, error: BaseException | None, count: int, repeats: int = 0
    ) -> None:
        spec = self._spec
        what = safe_repr(error) if error is not None else "a normal exit"
        again = (
            f" (it failed to start {repeats} times in a row this same way, logged above)"
            if repeats > 1
            else ""
        )
        message = (
            f"supervisor {self.path!r} gave up: child {child.cell.path!r} exited after {what}"
            f"{again}, which would be restart {count} within {spec.within:g} s, over "
            f"max_restarts={spec.max_restarts}. All its children were stopped. Fix the cause "
            "of the crashes, or raise max_restarts/within if they are expected"
        )
        # A repeated start failure's traceback was logged with its first occurrence.
        self.log.opt(exception=None if repeats > 1 else error).error("{}", message)
        await self._stop_children(self._children.ordered())
        raise RestartIntensityExceeded(
            message,
            supervisor=self.path,
            child=child.cell.path,
            restarts=count,
            max_restarts=spec.max_restarts,
            within=spec.within,
            last_error=error,
        ) from error

    async def _crashed(self, child: _Child, error: BaseException, *, during_start: bool) -> None:
        await self._exited(child, ExitReason.CRASHED, error, during_start=during_start)

    async def _exited(
        self,
        child: _Child,
        reason: ExitReason,
        error: BaseException | None,
        *,
        during_start: bool = False,
    ) -> None:
        """Apply the restart type, the budget and the strategy to one child's exit."""
        crashed = reason is ExitReason.CRASHED
        child.live = None
        child.state = ChildState.RESTARTING
        repeats = 0
        if crashed and during_start and error is not None:
            repeats = self._start_failures.count(child.cell.path, error)
        else:
            self._start_failures.clear(child.cell.path)
        restart = child.restart
        if restart is Restart.TEMPORARY or (restart is Restart.TRANSIENT and not crashed):
            self._log_exit(child, reason, error, during_start, "not restarted (stopped for good)")
            if restart is Restart.TEMPORARY:
                self._remove(child, reason, error)
            else:
                child.state = ChildState.STOPPED
                child.cell.finalize(reason, error)
            return
        count = self._charge()
        if count > self._spec.max_restarts:
            await self._give_up(child, error, count, repeats)  # logs exit and decision once
        group = self._restart_group(child)
        delay = self._backoff_delay(child, during_start=during_start)
        decision = (
            f"restarting {', '.join(c.cell.name for c in group)}"
            f"{f' in {delay:.3g} s' if delay else ''} "
            f"(restart {count} of {self._spec.max_restarts} within {self._spec.within:g} s)"
        )
        self._log_exit(child, reason, error, during_start, decision, repeats)
        await self._stop_children([c for c in group if c is not child])
        for sibling in group:
            if sibling is not child and sibling.restart is Restart.TEMPORARY:
                # Stopped because of another child's exit: not restarted, budget untouched.
                self._remove(sibling, *sibling.final_exit())
        group = [c for c in group if c.cell.name in self._children.by_name]
        if delay > 0 and not self._triactor_cell.started:
            # Still in this supervisor's own start: spawn returns once every child runs.
            await trio.sleep(delay)
        elif delay > 0:
            # Each child remembers the decision it waits for; a later decision about it (or a
            # restart of this supervisor) makes the earlier timer stale.
            token = object()  # unique, even across restarts of this supervisor
            for member in group:
                member.restart_token = token
            assert self._nursery is not None
            self._nursery.start_soon(
                self._restart_later, tuple(c.cell.name for c in group), token, delay
            )
            return
        await self._start_group(group)

    def _backoff_delay(self, child: _Child, *, during_start: bool) -> float:
        """The wait before restarting ``child``; ``during_start``: it failed to start."""
        backoff = child.backoff or self._spec.backoff
        if backoff is None:
            if not during_start:
                child.attempts = 0  # it did start: a streak of start failures is over
                return 0.0
            backoff = _START_FAILURE_BACKOFF
        # A child that failed to start did not run: its streak goes on.
        if not during_start and trio.current_time() - child.started_at >= backoff.quiet_period:
            child.attempts = 0
        delay = backoff.delay(child.attempts, self._rng)
        child.attempts += 1
        return delay

    async def _restart_later(self, names: tuple[str, ...], token: object, delay: float) -> None:
        await trio.sleep(delay)
        self._triactor_cell.mailbox.put_control(_RestartDue(names, token))

    def _log_exit(
        self,
        child: _Child,
        reason: ExitReason,
        error: BaseException | None,
        during_start: bool,
        decision: str,
        repeats: int = 0,
    ) -> None:
        if repeats > 1:
            # The same start failure again: its first occurrence was logged in full.
            self.log.debug(
                "child {} failed to start again the same way ({} times in a row); "
                "supervisor {}: {}",
                child.cell.path,
                repeats,
                self.path,
                decision,
            )
        elif isinstance(error, RestartIntensityExceeded):
            # The child supervisor logged its give-up with the traceback already.
            self.log.error(
                "child supervisor {} gave up (see above); supervisor {}: {}",
                child.cell.path,
                self.path,
                decision,
            )
        elif reason is ExitReason.CRASHED:
            when = "failed to start" if during_start else "crashed"
            self.log.opt(exception=error).error(
                "child {} {}: {}; supervisor {}: {}",
                child.cell.path,
                when,
                safe_repr(error),
                self.path,
                decision,
            )
        else:
            self.log.info(
                "child {} exited ({}); supervisor {}: {}",
                child.cell.path,
                reason.value,
                self.path,
                decision,
            )

    # -- handlers -------------------------------------------------------------------------------

    @handler
    async def _on_child_exited(self, msg: _ChildExited) -> None:
        child = self._children.by_name.get(msg.name)
        if child is None or child.live != msg.incarnation:
            return  # stale: the supervisor stopped that incarnation itself
        await self._exited(child, msg.reason, msg.error)

    @handler
    async def _on_restart_due(self, msg: _RestartDue) -> None:
        by_name = self._children.by_name
        group = [by_name[n] for n in msg.names if n in by_name]
        # Only the children still waiting for this very decision (not superseded by a later one).
        await self._start_group([c for c in group if c.restart_token is msg.token])

    # Requests from outside answer with an Outcome: a failed request must reach the caller
    # without crashing the supervisor, as a raise from a handler would.

    @handler
    async def _on_start_child(self, msg: StartChild) -> outcome.Outcome[ActorRef]:
        if not isinstance(msg.spec, ChildSpec | Supervisor | SubtreeSpec):
            return outcome.Error(
                TypeError(
                    f"start_child under supervisor {self.path!r}: a child must be a ChildSpec, "
                    f"Supervisor or Router, got {msg.spec!r}; wrap an Actor class as "
                    "ChildSpec(MyActor, name=...)"
                )
            )
        try:
            child = self._add(msg.spec, dynamic=True)
        except Exception as exc:  # a bad or duplicate name
            return outcome.Error(exc)
        try:
            await self._start(child)
        except Exception as exc:
            self._remove(child, ExitReason.CRASHED, exc)
            return outcome.Error(exc)
        return outcome.Value(child.cell.ref)

    @handler
    async def _on_terminate_child(self, msg: TerminateChild) -> outcome.Outcome[None]:
        child = self._children.by_name.get(msg.name)
        if child is None:
            return outcome.Error(
                ActorNotFound(
                    f"supervisor {self.path!r} has no child named {msg.name!r}; its children: "
                    f"{', '.join(self._children.by_name) or 'none'}"
                )
            )
        await self._stop_child(child)
        self._remove(child, *child.final_exit())
        return outcome.Value(None)

    @handler
    async def _on_which_children(self, msg: WhichChildren) -> list[ChildInfo]:
        return [child.info() for child in self._children.ordered()]
