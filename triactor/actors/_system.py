"""``ActorSystem`` and ``open_actor_system``: where actors live, are found, and are shut down."""

from __future__ import annotations

import itertools
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, final, overload

import attrs
import cattrs
import outcome
import trio
from trio.lowlevel import enable_ki_protection

from .._asyncio import open_asyncio_loop
from .._errors import ActorNotFound, ActorStopped, RestartIntensityExceeded
from .._groups import unwrapped_group
from .._logging import logger
from .._safe import safe_repr
from ..mailbox import Overflow
from ._actor import Actor, valid_resume_on, validate_options
from ._cell import ActorCell, ActorState, ExitReason
from ._checking import MessageChecker
from ._dead_letters import DeadLetters
from ._ref import ActorRef, LocalActorRef
from ._topics import TopicRegistry
from ._waits import starting

if TYPE_CHECKING:
    from ..diagnostics._snapshot import ActorSnapshot
    from ._transport import Transport

M = TypeVar("M")
R = TypeVar("R")

__all__ = [
    "ActorSystem",
    "Spawnable",
    "SystemStatistics",
    "Terminated",
    "open_actor_system",
]


#: How many live actor names a failed lookup's error lists.
_NAMES_SHOWN = 20


class Spawnable(Protocol):
    """Something other than an Actor class that ``system.spawn`` can start (a Supervisor)."""

    async def spawn_into(self, system: ActorSystem, nursery: trio.Nursery) -> ActorRef:
        """Start in ``nursery`` as a top-level member of ``system``; return its ref."""
        ...


@final
@attrs.frozen
class Terminated:
    """The notice that an actor stopped for good, from ``system.watch``.

    Attributes:
        actor: the path of the actor that stopped.
        reason: ``"normal"``, ``"crashed"`` or ``"cancelled"``.
        error: ``repr`` of the exception that ended it, or None.
    """

    actor: str
    reason: str
    error: str | None = None


@final
@attrs.frozen
class SystemStatistics:
    """A snapshot of an actor system, from :meth:`ActorSystem.statistics`.

    Attributes:
        actors: actors alive now (started and not stopped for good), supervised ones included.
        top_level: actors (and supervisors) spawned directly on the system and alive now.
        dead_letters: dead letters since the system started.
        shutting_down: whether the system has begun its shutdown.
        dropped_in_shutdown: queued messages that actors stopping during the shutdown left
            unhandled (they went to dead letters).
        cancelled_in_shutdown: actors cancelled during the shutdown because they did not stop
            by their deadline.
    """

    actors: int
    top_level: int
    dead_letters: int
    shutting_down: bool
    dropped_in_shutdown: int = 0
    cancelled_in_shutdown: int = 0


def _valid_name(name: object, owner: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"{owner}: an actor name must be a str, got {name!r}")
    if not name or "/" in name:
        raise ValueError(
            f"{owner}: an actor name must be non-empty and contain no '/', got {name!r}"
        )
    return name


@final
class ActorSystem:
    """The home of a set of actors: spawns them, finds them by name, records dead letters.

    Get one from :func:`open_actor_system` (or ``triactor.run`` / ``start_in_thread``); never
    construct it. All actors of a system run as tasks in the nursery that the ``async with``
    opened, so none outlives it. Leaving the block stops the actors gracefully, the most
    recently spawned first, each within its ``shutdown_timeout``.

    An actor spawned directly on the system has no supervisor: if it crashes, the crash is
    logged once with its traceback and raised out of ``open_actor_system``, cancelling the
    block, exactly like an error in a nursery task. Put actors under a
    :class:`~triactor.Supervisor` to have them restarted instead.
    """

    def __init__(
        self,
        nursery: trio.Nursery,
        *,
        thread_limiter: trio.CapacityLimiter,
        check_messages: bool,
        dead_letters_kept: int,
    ) -> None:
        self._nursery = nursery
        #: The cluster transport, when the system was opened with ``cluster=``.
        self._transport: Transport | None = None
        self.thread_limiter = thread_limiter
        #: The ident of the Trio thread the system runs in (refs check it to stay safe from
        #: other threads), and the Trio token they go through from other threads.
        self.thread_ident = threading.get_ident()
        self.trio_token = trio.lowlevel.current_trio_token()
        #: The asyncio loop of a system opened with ``asyncio=True`` (trio-asyncio's), or None.
        self.asyncio_loop: Any = None
        #: Whether every message's type is checked (once per type) to round-trip through cattrs.
        self.check_messages = check_messages
        self.dead_letters = DeadLetters(dead_letters_kept)
        self._cells_by_name: dict[str, ActorCell] = {}
        self._cells_by_path: dict[str, ActorCell] = {}
        # Top-level cells in spawn order (a dict: ordered, with O(1) removal).
        self._top_level: dict[ActorCell, None] = {}
        self._serial = itertools.count(1)
        self._converter = cattrs.Converter()
        # Refs inside messages are carried by path in the check (a transport carries them too).
        self._converter.register_unstructure_hook_func(_is_ref_type, _unstructure_ref)
        self._converter.register_structure_hook_func(_is_ref_type, self._structure_ref)
        self._topics = TopicRegistry(self)
        self._checker = MessageChecker(self._converter)
        self._shutting_down = False
        # What the shutdown lost: queued messages left unhandled, actors cancelled at deadlines.
        self._dropped_in_shutdown = 0
        self._cancelled_in_shutdown = 0
        # Shields the graceful shutdown from the cancellation that may have caused it;
        # abort() cancels it to cut the shutdown short.
        self._shutdown_scope = trio.CancelScope(shield=True)
        self._shutdown_finished = trio.Event()

    def __repr__(self) -> str:
        return (
            f"<ActorSystem {len(self._cells_by_path)} actors, "
            f"{self.dead_letters.count} dead letters"
            f"{', shutting down' if self._shutting_down else ''}>"
        )

    # -- spawning -------------------------------------------------------------------------------

    @overload
    async def spawn(
        self,
        target: type[Actor[M, R]],
        *args: Any,
        name: str | None = None,
        mailbox_capacity: int | None = None,
        overflow: Overflow | None = None,
        max_concurrency: int | None = None,
        shutdown_timeout: float | None = None,
        export: bool = False,
        resume_on: tuple[type[Exception], ...] | None = None,
        **kwargs: Any,
    ) -> ActorRef[M, R]: ...

    @overload
    async def spawn(
        self,
        target: Spawnable,
        *args: Any,
        name: str | None = None,
        mailbox_capacity: int | None = None,
        overflow: Overflow | None = None,
        max_concurrency: int | None = None,
        shutdown_timeout: float | None = None,
        export: bool = False,
        resume_on: tuple[type[Exception], ...] | None = None,
        **kwargs: Any,
    ) -> ActorRef: ...

    async def spawn(
        self,
        target: type[Actor] | Spawnable,
        *args: Any,
        name: str | None = None,
        mailbox_capacity: int | None = None,
        overflow: Overflow | None = None,
        max_concurrency: int | None = None,
        shutdown_timeout: float | None = None,
        export: bool = False,
        resume_on: tuple[type[Exception], ...] | None = None,
        **kwargs: Any,
    ) -> ActorRef:
        """Start an actor (or a supervisor tree) and return its ref.

        The ref is typed ``ActorRef[M, R]`` for an actor declared ``Actor[M, R]``.
        ``args`` and ``kwargs`` go to the actor's constructor; the keyword options override the
        class's defaults for this actor. Returns once the actor's ``on_start`` has completed.
        With ``export=True`` (a system opened with ``cluster=``) the actor is also reachable
        from other nodes as ``system.remote(name)``: its mailbox is then fed from the cluster
        too (see :class:`~triactor.Cluster`).
        A cancellation point; when the class has no ``on_start``, not a schedule point (so a
        loop spawning many actors runs on without yielding, like ``tell``).

        Raises:
            TypeError: if ``target`` is neither an Actor subclass nor a Supervisor, or an option
                has the wrong type.
            ValueError: if the name is taken or malformed, or an option is out of range.
            ActorStopped: if the system is shutting down.
            Exception: whatever the actor's constructor or ``on_start`` raised.
        """
        if not isinstance(target, type) and hasattr(target, "spawn_into"):
            if export:
                raise TypeError(
                    "spawn(supervisor, export=True): export the children instead, with "
                    "ChildSpec(..., export=True)"
                )
            if args or kwargs:
                raise TypeError("spawn(supervisor) takes no constructor arguments")
            self._check_open(type(target).__name__)
            # It spawns its own top-level actor through this system (so it is shut down in
            # order with the others, draining like them).
            return await target.spawn_into(self, self._nursery)
        # Before anything is registered: a cancelled spawn leaves nothing behind.
        await trio.lowlevel.checkpoint_if_cancelled()
        cell = self._new_cell(
            target,
            args,
            kwargs,
            name=name,
            parent_path="",
            mailbox_capacity=mailbox_capacity,
            overflow=overflow,
            max_concurrency=max_concurrency,
            shutdown_timeout=shutdown_timeout,
            export=export,
            resume_on=resume_on,
        )
        self._top_level[cell] = None
        try:
            instance = cell.construct()
        except BaseException as exc:
            cell.finalize(ExitReason.CRASHED, exc)
            raise
        try:
            if type(instance).on_start is Actor.on_start:
                # Nothing can fail before the first message: no need to wait for the task to
                # run (for spawn rate, a cancellation point but not a schedule point).
                self._nursery.start_soon(self._run_unsupervised, cell, instance, name=cell.path)
            else:
                with starting(cell):
                    await self._nursery.start(
                        self._run_unsupervised, cell, instance, name=cell.path
                    )
        except BaseException as exc:
            # A Ctrl-C may land before the task exists: nothing would ever stop the cell. If
            # the task did run, it has finalized the cell already (finalize is idempotent); if
            # it is only scheduled, it finds the cell stopped and returns at once.
            cell.finalize(ExitReason.CANCELLED, exc)
            raise
        return cell.ref

    def _new_cell(
        self,
        target: object,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        name: str | None,
        parent_path: str,
        mailbox_capacity: int | None = None,
        overflow: Overflow | None = None,
        max_concurrency: int | None = None,
        shutdown_timeout: float | None = None,
        export: bool = False,
        resume_on: tuple[type[Exception], ...] | None = None,
    ) -> ActorCell:
        """Validate and register a new actor cell (used by ``spawn`` and by supervisors).

        Raises:
            TypeError, ValueError: for a bad target, name or option (see :meth:`spawn`).
            ActorStopped: if the system is shutting down.
        """
        if export and self._transport is None:
            raise ValueError(
                f"cannot export {getattr(target, '__qualname__', target)!r} {name!r}: this "
                "actor system has no cluster; open it with open_actor_system(cluster=...) "
                "(or run the tree with cluster=...)"
            )
        if not (isinstance(target, type) and issubclass(target, Actor)):
            raise TypeError(
                f"spawn takes an Actor subclass or a Supervisor, got {target!r}; "
                "subclass triactor.Actor and pass the class itself"
            )
        owner = target.__qualname__
        self._check_open(owner)
        if name is None:
            name = f"{target.__name__}-{next(self._serial)}"
        name = _valid_name(name, owner)
        if name in self._cells_by_name:
            raise ValueError(
                f"an actor named {name!r} already runs at {self._cells_by_name[name].path}; "
                "names are unique in a system: pick another name or stop that actor first"
            )
        capacity = target.mailbox_capacity if mailbox_capacity is None else mailbox_capacity
        policy = target.overflow if overflow is None else overflow
        concurrency = target.max_concurrency if max_concurrency is None else max_concurrency
        timeout = target.shutdown_timeout if shutdown_timeout is None else shutdown_timeout
        validate_options(
            f"{owner} {name!r}",
            mailbox_capacity=capacity,
            overflow=policy,
            max_concurrency=concurrency,
            shutdown_timeout=timeout,
        )
        resume = (
            target.resume_on
            if resume_on is None
            else valid_resume_on(f"{owner} {name!r}", resume_on)
        )
        cell = ActorCell(
            self,
            target,
            args,
            kwargs,
            name=name,
            path=f"{parent_path}/{name}",
            mailbox_capacity=capacity,
            overflow=policy,
            max_concurrency=concurrency,
            shutdown_timeout=timeout,
            resume_on=resume,
        )
        self._cells_by_name[name] = cell
        self._cells_by_path[cell.path] = cell
        if self._transport is not None:
            self._transport.learn_actor_class(target)
            if export:
                self._transport.export(cell)
        return cell

    def _check_open(self, owner: str) -> None:
        if self._shutting_down:
            raise ActorStopped(f"cannot spawn {owner}: the actor system is shutting down")

    async def _run_unsupervised(
        self,
        cell: ActorCell,
        instance: Actor,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        if cell.state is ActorState.STOPPED:
            return  # its spawn was interrupted before this task ran
        reason = ExitReason.CANCELLED
        error: BaseException | None = None
        try:
            reason = await cell.run_incarnation(instance, task_status)
        except Exception as exc:
            reason, error = cell.last_exit or ExitReason.CRASHED, exc
            # A supervisor that gave up has logged it already.
            if cell.started and not isinstance(exc, RestartIntensityExceeded):
                cell.log.opt(exception=exc).error(
                    "actor {} crashed and has no supervisor: {}; stopping the actor system",
                    cell.path,
                    safe_repr(exc),
                )
            raise
        except BaseException as exc:
            error = exc
            raise
        finally:
            # On every way out (a Ctrl-C included), or a shutdown would wait for it forever.
            cell.finalize(reason, error)

    # -- finding --------------------------------------------------------------------------------

    def lookup(self, name: str) -> ActorRef:
        """Return the ref of the live actor with this name (or path, starting with ``/``).

        Finds supervised actors too, under the name their ``ChildSpec`` gave them.

        Raises:
            ActorNotFound: if no live actor has that name or path; the message lists the first
                few live names (in spawn order, cheap with any number of actors).
        """
        cell = (self._cells_by_path if name.startswith("/") else self._cells_by_name).get(name)
        if cell is None:
            raise ActorNotFound(self._not_found(name))
        return cell.ref

    def remote(self, name: str, actor_class: type[Actor] | None = None) -> ActorRef:
        """Return a ref to the exported actor ``name``, wherever in the cluster it runs.

        The ref works whether the actor is hosted here, on other nodes, or nowhere yet
        (messages then wait in the cluster, bounded, until a host starts). Messages go through
        the cluster even when the actor is hosted here (``lookup`` gives the local ref); with
        several hosts they are load-balanced among them. ``actor_class`` (optional) allows the
        types its handlers return on this node, so that replies decode as those types.

        Raises:
            ValueError: if the system has no cluster (open it with ``cluster=``), or the name
                is malformed.
        """
        if self._transport is None:
            raise ValueError(
                f"system.remote({name!r}) needs a cluster: open the system with "
                "open_actor_system(cluster='redis://...') (or use lookup() for a local actor)"
            )
        _valid_name(name, "remote()")
        return self._transport.remote_ref(name, actor_class)

    @property
    def node(self) -> str | None:
        """This process's node name in its cluster, or None without a cluster."""
        return None if self._transport is None else self._transport.node

    def _not_found(self, name: object) -> str:
        # Cheap with any number of actors: the first few names in spawn order, not a sort.
        count = len(self._cells_by_name)
        shown = list(itertools.islice(self._cells_by_name, _NAMES_SHOWN))
        known = ", ".join(shown) or "none"
        more = (
            f" (and {count - len(shown)} more; system.actors() lists all)"
            if count > len(shown)
            else ""
        )
        return (
            f"no live actor named {safe_repr(name, 200)} in this system; live actors: {known}{more}"
        )

    def actors(self) -> list[ActorRef]:
        """Return the refs of every live actor, in spawn order."""
        return [cell.ref for cell in self._cells_by_path.values()]

    def _cell_of(self, ref: ActorRef) -> ActorCell:
        if not isinstance(ref, LocalActorRef):
            raise TypeError(f"expected a ref from this actor system, got {ref!r}")
        return ref._cell

    async def watch(self, ref: ActorRef) -> Terminated:
        """Wait until the actor stops for good and return its :class:`Terminated` notice.

        Restarts are not deaths: a supervised actor that is restarted does not end the wait.
        Watching an actor that has already stopped returns its notice at once.

        Raises:
            TypeError: if ``ref`` is not a ref of this system.
        """
        cell = self._cell_of(ref)
        await cell.terminated.wait()
        return self._terminated_notice(cell)

    def when_stopped(
        self, ref: ActorRef[Any, Any], callback: Callable[[ActorRef[Any, Any]], None]
    ) -> None:
        """Call ``callback(ref)`` once when the actor stops for good (at once if it has).

        The death watch behind pub-sub; a transport extends it to the refs it makes.

        Raises:
            TypeError: if ``ref`` is not a ref of this system.
        """
        cell = self._cell_of(ref)
        if cell.system is not self:
            raise TypeError(f"expected a ref from this actor system, got {ref!r}")
        cell.add_watcher(lambda _: callback(ref))

    @staticmethod
    def _terminated_notice(cell: ActorCell) -> Terminated:
        """The :class:`Terminated` notice for a cell that has stopped for good."""
        reason = cell.exit_reason.value if cell.exit_reason is not None else "normal"
        error = safe_repr(cell.exit_error) if cell.exit_error is not None else None
        return Terminated(cell.path, reason, error)

    def _forget(self, cell: ActorCell) -> None:
        if self._cells_by_name.get(cell.name) is cell:
            del self._cells_by_name[cell.name]
        if self._cells_by_path.get(cell.path) is cell:
            del self._cells_by_path[cell.path]
        self._top_level.pop(cell, None)

    # -- supervisors' dynamic children ----------------------------------------------------------

    def _supervisor_ref(self, supervisor: ActorRef | str) -> ActorRef:
        from ..supervision._supervisor import SupervisorActor

        ref = self.lookup(supervisor) if isinstance(supervisor, str) else supervisor
        if not issubclass(self._cell_of(ref).actor_class, SupervisorActor):
            raise TypeError(
                f"{ref.path!r} is not a supervisor; pass the name or ref of a Supervisor "
                "(dynamic children are started under supervisors, not plain actors)"
            )
        return ref

    async def start_child(self, supervisor: ActorRef | str, spec: Any) -> ActorRef:
        """Start a dynamic child (a ``ChildSpec`` or ``Supervisor``) under a running supervisor.

        The child is supervised like the static ones, by the supervisor's strategy, and is
        stopped (in parallel with the other dynamic children) before them. It lives as long as
        the supervisor's current incarnation: a supervisor restarted by its own supervisor
        starts again from its static children only, as in OTP.

        Raises:
            ActorNotFound: if no supervisor of that name runs.
            TypeError: if ``supervisor`` names an actor that is not a supervisor, or ``spec`` is
                not a ``ChildSpec`` or ``Supervisor``.
            ValueError: if the child's name is taken.
            Exception: whatever the child's constructor or ``on_start`` raised (the child is
                then not kept, and the supervisor's restart budget is untouched).
        """
        from ..supervision._supervisor import StartChild

        ref = self._supervisor_ref(supervisor)
        result: outcome.Outcome[ActorRef] = await ref.ask(StartChild(spec))
        return result.unwrap()

    async def terminate_child(self, supervisor: ActorRef | str, name: str) -> None:
        """Stop a supervisor's child for good (within its shutdown timeout) and forget it.

        Raises:
            ActorNotFound: if there is no such supervisor, or it has no child ``name``.
        """
        from ..supervision._supervisor import TerminateChild

        ref = self._supervisor_ref(supervisor)
        result: outcome.Outcome[None] = await ref.ask(TerminateChild(name))
        result.unwrap()

    async def which_children(self, supervisor: ActorRef | str) -> list[Any]:
        """Return a ``ChildInfo`` for each child of a running supervisor, in start order.

        Raises:
            ActorNotFound: if no supervisor of that name runs.
        """
        from ..supervision._supervisor import WhichChildren

        children: list[Any] = await self._supervisor_ref(supervisor).ask(WhichChildren())
        return children

    async def count_children(self, supervisor: ActorRef | str) -> Any:
        """Return the ``ChildCounts`` of a running supervisor (exact, even under churn).

        Raises:
            ActorNotFound: if no supervisor of that name runs.
        """
        from ..supervision._supervisor import ChildCounts, ChildState

        children = await self.which_children(supervisor)
        states = [child.state for child in children]
        supervisors = sum(child.supervisor for child in children)
        return ChildCounts(
            specs=len(children),
            running=states.count(ChildState.RUNNING),
            restarting=states.count(ChildState.RESTARTING),
            stopped=states.count(ChildState.STOPPED),
            supervisors=supervisors,
            workers=len(children) - supervisors,
        )

    # -- publish / subscribe --------------------------------------------------------------------

    def subscribe(self, ref: ActorRef[Any, Any], topic: str) -> None:
        """Subscribe the actor behind ``ref`` to ``topic``: it gets every message published there.

        Subscribing twice changes nothing. The subscription belongs to the ref, so it survives
        restarts of the actor; when the actor stops for good it leaves all its topics by
        itself (a stopped actor is not added). Typically ``self.system.subscribe(self.ref,
        "prices")`` in ``on_start``.

        Raises:
            TypeError: if ``topic`` is not a str, or ``ref`` is not a ref of this system.
            ValueError: if ``topic`` is empty.
        """
        self._topics.subscribe(ref, topic)
        if self._transport is not None:
            self._transport.join_topic(topic)

    def unsubscribe(self, ref: ActorRef[Any, Any], topic: str) -> None:
        """Stop delivering ``topic`` to ``ref``; nothing happens if it was not subscribed.

        Raises:
            TypeError: if ``topic`` is not a str.
            ValueError: if ``topic`` is empty.
        """
        self._topics.unsubscribe(ref, topic)

    def subscribers(self, topic: str) -> list[ActorRef]:
        """Return the refs subscribed to ``topic`` now, in subscription order.

        Raises:
            TypeError: if ``topic`` is not a str.
            ValueError: if ``topic`` is empty.
        """
        return self._topics.subscribers(topic)

    async def publish(
        self, topic: str, message: object, *, priority: int = 0, timeout: float | None = 5.0
    ) -> int:
        """Send ``message`` to every subscriber of ``topic``; return how many got it queued.

        Each subscriber's overflow policy applies to its own copy, and one subscriber never
        stops the others from getting theirs: the message is queued at once in every mailbox
        with room; a full ``DROP_NEWEST`` / ``DROP_OLDEST`` mailbox drops a message into dead
        letters as for ``tell``; a full ``FAIL`` mailbox does not fail the publish: its copy
        goes to dead letters (reason ``PUBLISH_DROPPED``). Full ``BLOCK`` mailboxes
        backpressure the publisher: ``publish`` waits for room in all of them at once, for at
        most ``timeout`` seconds; a subscriber still full then misses this message (dead
        letter, ``PUBLISH_DROPPED``) and is marked lagging: later publishes do not wait for it
        (its copies go to dead letters) until one finds room in its mailbox again. So a stuck
        subscriber costs the publisher one timeout, not one per message. ``timeout=None``
        waits as long as it takes.

        A topic without subscribers takes the message and returns 0. A cancellation point;
        a schedule point only when it waits for room.

        In a cluster, the message also goes to the subscribers on other nodes, through the
        topic's stream: each node that has subscribers reads it (from its first subscription
        on) and hands each message to them by these same rules. The return value counts this
        node's subscribers only.

        Raises:
            TypeError: if ``topic`` is not a str (or, with ``check_messages``, the message is
                not plain data).
            ValueError: if ``topic`` is empty or ``timeout`` is negative.
        """
        delivered = await self._topics.publish(topic, message, priority=priority, timeout=timeout)
        if self._transport is not None:
            await self._transport.publish(topic, message, priority)
        return delivered

    async def _publish_locally(self, topic: str, message: object, priority: int) -> int:
        """Deliver a message published on another node to this system's subscribers. Internal
        (the cluster transport calls it), with :meth:`publish`'s rules."""
        return await self._topics.publish(topic, message, priority=priority, timeout=5.0)

    # -- messages -------------------------------------------------------------------------------

    def check_message(self, message: object) -> None:
        """Check that ``message`` is plain data a transport can carry, and round-trips.

        Runs for every message when the system was opened with ``check_messages=True`` (a
        development and test aid: it costs a cattrs round trip per message).

        Raises:
            TypeError: if the message does not unstructure to plain data (dicts with str keys,
                lists, str, int, float, bool, None) or does not structure back to its type. The
                error names the message type, the field and the offending type, never the
                value (a message may be megabytes).
        """
        self._checker.check(message)

    def snapshot(self, *, stacks_older_than: float | None = None) -> list[ActorSnapshot]:
        """Return what every live actor is doing now: a list of ``ActorSnapshot``, one per actor.

        Args:
            stacks_older_than: also capture the await stack of every handler that has been busy
                for at least this many seconds (None: no stacks).
        """
        from ..diagnostics._snapshot import snapshot_cells

        return snapshot_cells(
            list(self._cells_by_path.values()), stacks_older_than=stacks_older_than
        )

    def cluster_statistics(self) -> list[Any]:
        """Return an :class:`~triactor.ExportStatistics` per exported name hosted here.

        Stream length, pending (delivered, unacknowledged), redeliveries and the nodes hosting
        the name, as last refreshed with the node's heartbeat. Empty without a cluster.
        """
        return [] if self._transport is None else list(self._transport.statistics())

    def statistics(self) -> SystemStatistics:
        """Return a :class:`SystemStatistics` snapshot."""
        return SystemStatistics(
            actors=len(self._cells_by_path),
            top_level=len(self._top_level),
            dead_letters=self.dead_letters.count,
            shutting_down=self._shutting_down,
            dropped_in_shutdown=self._dropped_in_shutdown,
            cancelled_in_shutdown=self._cancelled_in_shutdown,
        )

    # -- shutdown -------------------------------------------------------------------------------

    def _lost_in_shutdown(self, *, dropped: int = 0, cancelled: int = 0) -> None:
        # Called by cells as they stop; only what happens during the shutdown is its loss.
        if self._shutting_down:
            self._dropped_in_shutdown += dropped
            self._cancelled_in_shutdown += cancelled

    async def _stop_cell(self, cell: ActorCell, *, drain: bool) -> None:
        """Stop one actor within its shutdown timeout; past it, the actor is cancelled."""
        deadline = trio.current_time() + cell.shutdown_timeout
        await cell.request_stop(drain=drain, deadline=deadline).wait()

    def abort(self) -> None:
        """Cancel every actor now, without waiting for stops or drains (a second Ctrl-C).

        ``on_stop`` hooks still run, each bounded by its ``shutdown_timeout``. A sync handler
        running in a worker thread cannot be cancelled: its actor waits for it within that same
        bound (then skips ``on_stop``), and its message is counted when the thread returns.
        """
        self._shutdown_scope.cancel()
        self._nursery.cancel_scope.cancel()

    def begin_shutdown(self) -> None:
        """Start the graceful :meth:`shutdown` in the background and return at once."""
        if not self._shutting_down:
            self._nursery.start_soon(self.shutdown)

    async def shutdown(self) -> None:
        """Stop every top-level actor and supervisor, the most recently spawned first.

        Each actor drains its mailbox (refusing new messages) within its ``shutdown_timeout``,
        then runs ``on_stop``; one that overruns is cancelled. Runs shielded from cancellation,
        bounded by the timeouts. Called when the ``open_actor_system`` block exits.
        """
        if self._shutting_down:  # already under way: wait for it (abort() ends it too)
            with trio.CancelScope(shield=True):
                await self._shutdown_finished.wait()
            return
        self._shutting_down = True
        transport = self._transport
        try:
            with self._shutdown_scope:
                if transport is not None:
                    await transport.stop_feeding()
                while self._top_level:
                    cell = next(reversed(self._top_level))
                    self._top_level.pop(cell)
                    await self._stop_cell(cell, drain=True)
                if transport is not None:
                    await transport.close()
        finally:
            # Set on every way out: a second caller waits for it, shielded. (Cut short by a
            # Ctrl-C, the shutdown ends here; the KeyboardInterrupt cancels the actors.)
            self._shutdown_finished.set()
        if self._shutdown_scope.cancelled_caught:
            logger.warning("actor system shutdown was aborted; remaining actors were cancelled")
        elif self._dropped_in_shutdown or self._cancelled_in_shutdown:
            logger.warning(
                "actor system shutdown was not clean: {} queued messages were left unhandled "
                "(see dead letters) and {} actors were cancelled at their shutdown deadline",
                self._dropped_in_shutdown,
                self._cancelled_in_shutdown,
            )

    def _structure_ref(self, data: Any, _: type) -> ActorRef:
        path = data.get("actor") if isinstance(data, dict) else None
        if not isinstance(path, str):
            raise TypeError(f"{data!r} is not a carried actor ref")
        return self.lookup(path)


def _is_ref_type(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, ActorRef)


def _unstructure_ref(ref: ActorRef) -> dict[str, str]:
    return {"actor": ref.path}


@asynccontextmanager
@enable_ki_protection  # the nursery below must be exited on every path, even a Ctrl-C's
async def open_actor_system(
    *,
    thread_limit: int | None = None,
    check_messages: bool = False,
    dead_letters_kept: int = 1000,
    cluster: Any = None,
    asyncio: bool = False,
) -> AsyncIterator[ActorSystem]:
    """Open an actor system whose actors live as long as the ``async with`` block.

    Example::

        async with open_actor_system() as system:
            counter = await system.spawn(Counter, 5, name="counter")
            await counter.tell(Add(2))
            assert await counter.ask(Total()) == 7

    Leaving the block stops every actor gracefully (the most recently spawned first; each drains
    its mailbox and runs ``on_stop`` within its ``shutdown_timeout``). An unsupervised actor's
    crash cancels the block and is raised out of it as the actor's own exception, not wrapped in
    an exception group (several distinct errors stay grouped, so none is lost).

    Args:
        thread_limit: how many sync (plain ``def``) handlers may run in threads at once, over all
            actors of the system; default: Trio's default thread limiter.
        check_messages: check every message for plain data and a cattrs round trip, so that
            messages stay carriable by a remote transport (raises :class:`TypeError` at the
            sender). A development and test aid: it costs a round trip per message.
        dead_letters_kept: how many recent dead letters ``system.dead_letters`` keeps. Each
            keeps its message object (for inspection or a resend), so they hold up to this many
            times your message size in memory; the counts stay exact whatever this is (0 keeps
            counts only).
        cluster: a :class:`~triactor.Cluster` (or its Redis URL) to join: actors spawned with
            ``export=True`` become reachable from other processes and machines, and
            ``system.remote(name)`` reaches theirs. Connecting waits (with backoff) until the
            server answers; bound it with a cancel scope.
        asyncio: run an asyncio event loop beside the actors (through trio-asyncio, the
            ``asyncio`` extra), so that handlers can await asyncio libraries with
            :func:`triactor.run_asyncio`. It closes after the last actor has stopped.

    Raises:
        ValueError: if ``thread_limit`` is less than 1, ``dead_letters_kept`` is negative, or
            the cluster URL is malformed.
        RuntimeError: with ``asyncio=True``, if trio-asyncio is not installed.
    """
    if thread_limit is None:
        limiter = trio.to_thread.current_default_thread_limiter()
    else:
        if thread_limit < 1:
            raise ValueError(f"thread_limit must be at least 1, got {thread_limit}")
        limiter = trio.CapacityLimiter(thread_limit)
    async with AsyncExitStack() as stack:
        loop = await stack.enter_async_context(open_asyncio_loop()) if asyncio else None
        with unwrapped_group():
            async with trio.open_nursery() as nursery, AsyncExitStack() as cluster_stack:
                system = ActorSystem(
                    nursery,
                    thread_limiter=limiter,
                    check_messages=check_messages,
                    dead_letters_kept=dead_letters_kept,
                )
                system.asyncio_loop = loop
                if cluster is not None:
                    # The cluster is optional: loaded on demand.
                    from ..remote._node import open_node

                    system._transport = await cluster_stack.enter_async_context(
                        open_node(cluster, system)
                    )
                try:
                    yield system
                finally:
                    await system.shutdown()
