"""``Router``: the spec of a router, and the supervisor actor that runs one."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, final

from ..actors import Actor, ActorRef, ExitReason
from ..mailbox import Overflow
from ..supervision import Backoff, ChildSpec, Restart, Strategy, Supervisor
from ..supervision._spec import SubtreeSpec, _valid_name
from ..supervision._supervisor import SupervisorActor, _Children, add_static_children
from ._ref import RouterRef
from ._routing import Routing

if TYPE_CHECKING:
    import trio

    from ..actors import ActorSystem
    from ..actors._cell import ActorCell

__all__ = ["Router", "RouterActor"]


@final
class Router(SubtreeSpec):
    """A router spec: ``size`` identical actors (routees) behind one ref, supervised.

    Fanning work out to N identical agents (fetchers, scorers, model slots) without writing the
    routing by hand: the router's ref takes messages like any actor's and hands each to one
    routee, chosen by ``routing`` (:class:`Routing`). The routees are the router's children: one
    that crashes is restarted (one for one, within the router's ``max_restarts``/``within``
    budget) and the messages queued for it wait for the new incarnation.

    Example::

        router = triactor.Router("fetchers", Fetcher, size=8, routing=triactor.Routing.LEAST_BUSY)
        fetchers = await system.spawn(router)        # one ref in front of 8 supervised routees
        await fetchers.tell(Fetch(url))

    Like a :class:`~triactor.Supervisor`, a router is a spec: nothing runs until it is spawned,
    or started as a child of a supervisor (``Supervisor("root", [ChildSpec(...), router])``),
    which then starts, restarts and stops it as one child, in spec order. Its routees are named
    ``<name>-0`` ... ``<name>-<size - 1>`` and start in that order; ``system.lookup(name)``
    returns the router's ref, a :class:`~triactor.RouterRef`.

    Backpressure holds across the router: each routee has its own bounded mailbox
    (``mailbox_capacity``, ``overflow``), so a router whose routees are all full makes ``tell``
    wait under ``Overflow.BLOCK``, and applies the drop or fail policy otherwise.

    This is not a load balancer across processes by itself: routees run in this process. For
    CPU-bound routees, have their handlers call :func:`~triactor.run_in_process`.

    Args:
        name: the router's name (unique in the system, like an actor's).
        actor: the Actor subclass every routee runs.
        size: how many routees (at least 1).
        routing: how each message's routee is chosen (default ``Routing.LEAST_BUSY``).
        args, kwargs: the routees' constructor arguments (the same for each).
        restart: the router's restart type as a child of another supervisor.
        mailbox_capacity, overflow, max_concurrency, shutdown_timeout, backoff: each routee's,
            as in a :class:`~triactor.ChildSpec` (defaults: the actor class's).
        max_restarts, within: the restart intensity over all routees, as in a Supervisor.
        export: make the router reachable from other nodes of the system's cluster as
            ``system.remote(name)``; its stream feeds the routees (each message to the one
            ``routing`` picks), so with the same router on several nodes the work spreads over
            every node's routees. Needs a system with a cluster.

    Raises:
        TypeError: if ``actor`` is not an Actor subclass, ``routing`` is not a ``Routing``, or
            an option has the wrong type.
        ValueError: for a bad name, ``size`` < 1, or an option out of range.
    """

    __slots__ = ("actor", "export", "name", "restart", "routing", "size", "supervisor")

    def __init__(
        self,
        name: str,
        actor: type[Actor],
        size: int,
        *,
        routing: Routing = Routing.LEAST_BUSY,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        restart: Restart = Restart.PERMANENT,
        mailbox_capacity: int | None = None,
        overflow: Overflow | None = None,
        max_concurrency: int | None = None,
        shutdown_timeout: float | None = None,
        backoff: Backoff | None = None,
        max_restarts: int = 3,
        within: float = 5.0,
        export: bool = False,
    ) -> None:
        name = _valid_name(name, "Router")
        if not (isinstance(actor, type) and issubclass(actor, Actor)):
            raise TypeError(
                f"router {name!r} takes the Actor subclass its routees run, got {actor!r}"
            )
        if not isinstance(size, int) or isinstance(size, bool):
            raise TypeError(f"router {name!r}: size must be an int, got {size!r}")
        if size < 1:
            raise ValueError(f"router {name!r}: size must be at least 1, got {size}")
        if not isinstance(routing, Routing):
            raise TypeError(
                f"router {name!r}: routing must be a triactor.Routing (ROUND_ROBIN, "
                f"LEAST_BUSY), got {routing!r}"
            )
        routees = [
            ChildSpec(
                actor,
                args=args,
                kwargs=kwargs,
                name=f"{name}-{index}",
                shutdown_timeout=shutdown_timeout,
                backoff=backoff,
                mailbox_capacity=mailbox_capacity,
                overflow=overflow,
                max_concurrency=max_concurrency,
            )
            for index in range(size)
        ]
        #: The supervisor spec the router runs (its routees, restarted one for one).
        self.supervisor = Supervisor(
            name,
            routees,
            strategy=Strategy.ONE_FOR_ONE,
            max_restarts=max_restarts,
            within=within,
            restart=restart,
        )
        self.name: str = self.supervisor.name
        self.restart: Restart = restart
        #: The Actor subclass every routee runs.
        self.actor = actor
        #: How many routees.
        self.size = size
        #: How each message's routee is chosen.
        self.routing = routing
        #: Whether the router's name is reachable from other nodes of the cluster (its
        #: stream then feeds the routees, chosen by ``routing``, like local sends).
        self.export = bool(export)

    def __repr__(self) -> str:
        return (
            f"Router({self.name!r}, {self.actor.__qualname__}, size={self.size}, "
            f"routing={self.routing.name})"
        )

    @property
    def routee_spec(self) -> ChildSpec:
        """The spec of the first routee (all are alike but for their names)."""
        spec = self.supervisor.children[0]
        assert isinstance(spec, ChildSpec)
        return spec

    async def spawn_into(self, system: ActorSystem, nursery: trio.Nursery) -> ActorRef:
        """Start this router as a top-level member of ``system`` (``system.spawn(router)``).

        Returns its :class:`~triactor.RouterRef` once every routee has started.

        Raises:
            ValueError: if the router's or a routee's name is taken.
            RestartIntensityExceeded: if the routees keep failing to start.
        """
        return await system.spawn(
            RouterActor,
            self,
            _Children(),
            name=self.name,
            shutdown_timeout=math.inf,
            export=self.export,
        )

    def _new_cell(self, system: ActorSystem, parent_path: str) -> ActorCell:
        """Register the router's cell and its routees' under ``parent_path`` (for a supervisor).

        The routees' mailboxes exist from here on, so messages sent before the router starts
        wait for their routee, as they would for a plain child.

        Raises:
            ValueError: if the router's or a routee's name is taken.
        """
        children = _Children()
        cell = system._new_cell(
            RouterActor,
            (self, children),
            {},
            name=self.name,
            parent_path=parent_path,
            shutdown_timeout=math.inf,
            export=self.export,
        )
        try:
            add_static_children(system, children, self.supervisor, cell.path)
        except BaseException:
            cell.finalize(ExitReason.CRASHED)
            raise
        children.finalizer_installed = True
        cell.add_watcher(children.finalize_all)
        _install_ref(cell, children, self.routing)
        return cell


def _install_ref(cell: ActorCell, children: _Children, routing: Routing) -> None:
    # The router's cell answers to its name like any actor's; its ref routes to the routees.
    routees = [child.cell for child in children.ordered()]
    ref = cell.ref
    if isinstance(ref, RouterRef):
        ref._set_routees(routees)
    else:
        cell.ref = RouterRef(cell, routees, routing)


class RouterActor(SupervisorActor):
    """The actor that runs a :class:`Router`: the supervisor of its routees. Runtime only."""

    def __init__(self, router: Router, children: _Children) -> None:
        super().__init__(router.supervisor, children)
        # Top level, first incarnation: the ref is made now. A restart may have replaced routees
        # that had stopped for good (terminate_child) with new cells: the ref learns them.
        _install_ref(self._triactor_cell, children, router.routing)
