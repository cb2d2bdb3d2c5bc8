"""The declarative side of supervision: restart types, strategies, backoff and child specs."""

from __future__ import annotations

import abc
import enum
import math
import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, final

import attrs

from ..actors import Actor
from ..actors._actor import valid_resume_on, validate_options
from ..mailbox import Overflow

if TYPE_CHECKING:
    import trio

    from ..actors import ActorRef, ActorSystem
    from ..actors._cell import ActorCell

__all__ = ["Backoff", "ChildSpec", "Restart", "Strategy", "SubtreeSpec", "Supervisor"]


class Restart(enum.Enum):
    """When a supervisor restarts a child that exited (Erlang/OTP's restart types).

    Attributes:
        PERMANENT: always, whether it crashed or stopped normally.
        TRANSIENT: only after a crash; a normal stop ends it for good.
        TEMPORARY: never; when it exits, its spec is removed from the supervisor.
    """

    PERMANENT = "permanent"
    TRANSIENT = "transient"
    TEMPORARY = "temporary"


class Strategy(enum.Enum):
    """Which children a supervisor restarts when one of them has to be restarted.

    Attributes:
        ONE_FOR_ONE: only that child.
        ONE_FOR_ALL: all children: the others are stopped (reverse spec order), then all are
            started again (spec order).
        REST_FOR_ONE: that child and the ones after it in spec order: those are stopped in
            reverse order, then started again in spec order.
    """

    ONE_FOR_ONE = "one_for_one"
    ONE_FOR_ALL = "one_for_all"
    REST_FOR_ONE = "rest_for_one"


def _non_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TypeError(f"Backoff.{attribute.name} must be a number of seconds, got {value!r}")
    if not value >= 0 or math.isinf(value):
        raise ValueError(f"Backoff.{attribute.name} must be finite and >= 0, got {value!r}")


@final
@attrs.frozen
class Backoff:
    """Exponential delay before restarting a child, with jitter, reset after a quiet period.

    The n-th consecutive restart of a child (n = 0, 1, 2...) waits ``min * factor**n`` seconds,
    capped at ``max``, then spread by ``jitter`` (0.2 means +/-20%). When the child has run
    for ``reset_after`` seconds (default: ``max``) without crashing, the next delay is ``min``
    again. Delays never overflow, however many restarts there were.

    Example::

        ChildSpec(Fetcher, backoff=Backoff(min=0.1, max=10.0, jitter=0.2))

    This is not a retry budget: how many restarts are allowed is the supervisor's
    ``max_restarts`` within ``within``; backoff only spaces them out.

    Raises:
        ValueError: if a value is negative or infinite, ``min > max``, ``factor < 1`` or
            ``jitter`` is not in [0, 1].
    """

    min: float = attrs.field(default=0.1, validator=_non_negative)
    max: float = attrs.field(default=10.0, validator=_non_negative)
    jitter: float = attrs.field(default=0.2, validator=_non_negative)
    factor: float = attrs.field(default=2.0, validator=_non_negative)
    reset_after: float | None = None

    def __attrs_post_init__(self) -> None:
        if self.min > self.max:
            raise ValueError(f"Backoff.min ({self.min}) must not exceed Backoff.max ({self.max})")
        if self.factor < 1:
            raise ValueError(f"Backoff.factor must be >= 1, got {self.factor}")
        if self.jitter > 1:
            raise ValueError(f"Backoff.jitter is a fraction in [0, 1], got {self.jitter}")
        if self.reset_after is not None and not self.reset_after >= 0:
            raise ValueError(f"Backoff.reset_after must be >= 0, got {self.reset_after}")

    @property
    def quiet_period(self) -> float:
        """Seconds of running without a crash after which the delay goes back to ``min``."""
        return self.max if self.reset_after is None else self.reset_after

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """The delay in seconds before restart number ``attempt`` (0-based) of a streak."""
        base = self.max
        if self.factor == 1:
            base = self.min
        elif self.min > 0:
            # Past this exponent the delay is capped anyway; stop before floats overflow.
            ceiling = math.log(self.max / self.min, self.factor) if self.max > 0 else 0
            if attempt <= ceiling:
                base = min(self.max, self.min * self.factor ** max(attempt, 0))
        else:
            base = 0.0
        if self.jitter and base:
            spread = (rng or random).uniform(-self.jitter, self.jitter)
            base = max(0.0, base * (1 + spread))
        return base


def _valid_name(value: object, what: str) -> str:
    if not isinstance(value, str) or not value or "/" in value:
        raise ValueError(f"{what} name must be a non-empty str without '/', got {value!r}")
    return value


@final
@attrs.frozen(init=False)
class ChildSpec:
    """How a supervisor starts, restarts and stops one actor.

    Example::

        ChildSpec(Counter, args=(5,), name="counter", restart=Restart.PERMANENT,
                  shutdown_timeout=5.0, backoff=Backoff(min=0.1, max=10.0, jitter=0.2))

    Args:
        actor: the Actor subclass to run.
        args, kwargs: constructor arguments, used again for every restart.
        name: the actor's name (unique in the system); default: the class name.
        restart: when to restart it (:class:`Restart`).
        shutdown_timeout: seconds it may take to stop before it is cancelled; default: the
            actor class's ``shutdown_timeout``.
        backoff: delay restarts with a :class:`Backoff`; default: the supervisor's, or none
            (a child that fails to start is then retried after a short backoff anyway).
        mailbox_capacity, overflow, max_concurrency: override the class's defaults.
        export: make the actor reachable from other nodes of the system's cluster, as
            ``system.remote(name)`` (needs a system with a cluster).
        resume_on: exception types its handlers may raise without crashing it (see
            :class:`~triactor.Actor`); default: the class's ``resume_on``. ``()`` makes every
            exception a crash.

    Raises:
        TypeError: if ``actor`` is not an Actor subclass, or an option has the wrong type.
        ValueError: if the name or an option is invalid.
    """

    actor: type[Actor]
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    name: str
    restart: Restart
    shutdown_timeout: float | None
    backoff: Backoff | None
    mailbox_capacity: int | None
    overflow: Overflow | None
    max_concurrency: int | None
    export: bool
    resume_on: tuple[type[Exception], ...] | None

    def __init__(
        self,
        actor: type[Actor],
        *,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        name: str | None = None,
        restart: Restart = Restart.PERMANENT,
        shutdown_timeout: float | None = None,
        backoff: Backoff | None = None,
        mailbox_capacity: int | None = None,
        overflow: Overflow | None = None,
        max_concurrency: int | None = None,
        export: bool = False,
        resume_on: tuple[type[Exception], ...] | None = None,
    ) -> None:
        if not (isinstance(actor, type) and issubclass(actor, Actor)):
            raise TypeError(
                f"ChildSpec takes an Actor subclass, got {actor!r}; for a subtree put the "
                "Supervisor itself in children=[...]"
            )
        if not isinstance(restart, Restart):
            raise TypeError(f"ChildSpec restart must be a triactor.Restart, got {restart!r}")
        if backoff is not None and not isinstance(backoff, Backoff):
            raise TypeError(f"ChildSpec backoff must be a triactor.Backoff, got {backoff!r}")
        child_name = actor.__name__ if name is None else name
        validate_options(
            f"ChildSpec {child_name!r}",
            mailbox_capacity=actor.mailbox_capacity
            if mailbox_capacity is None
            else mailbox_capacity,
            overflow=actor.overflow if overflow is None else overflow,
            max_concurrency=actor.max_concurrency if max_concurrency is None else max_concurrency,
            shutdown_timeout=actor.shutdown_timeout
            if shutdown_timeout is None
            else shutdown_timeout,
        )
        if resume_on is not None:
            resume_on = valid_resume_on(f"ChildSpec {child_name!r}", resume_on)
        self.__attrs_init__(
            actor,
            tuple(args),
            dict(kwargs or {}),
            _valid_name(actor.__name__ if name is None else name, "ChildSpec"),
            restart,
            shutdown_timeout,
            backoff,
            mailbox_capacity,
            overflow,
            max_concurrency,
            bool(export),
            resume_on,
        )


class SubtreeSpec(abc.ABC):
    """A child that runs as a supervisor of children it defines itself, such as a Router.

    The extension point through which kinds of subtree other than :class:`Supervisor` take
    part in a tree: a supervisor accepts them in ``children``, starts, restarts and stops
    them like a child supervisor, and reports them as supervisors in ``which_children``.
    """

    __slots__ = ()

    #: The child's name, unique in the system.
    name: str
    #: Its restart type as a child of another supervisor.
    restart: Restart

    @abc.abstractmethod
    def _new_cell(self, system: ActorSystem, parent_path: str) -> ActorCell:
        """Register the subtree's root cell under ``parent_path`` and return it (not started).

        Raises:
            ValueError: if a name it needs is taken.
        """


@final
class Supervisor:
    """A supervisor spec: a named group of children, restarted by rule (Erlang/OTP semantics).

    A ``Supervisor`` describes a tree; nothing runs until it is spawned
    (``await system.spawn(tree)``) or run (``triactor.run(tree)``). It can be a child of
    another supervisor, which restarts the whole subtree as one child.

    Example::

        tree = Supervisor(
            "root",
            children=[
                ChildSpec(Counter, args=(5,), name="counter"),
                Supervisor("workers", children=[...], strategy=Strategy.ONE_FOR_ALL),
            ],
            strategy=Strategy.ONE_FOR_ONE, max_restarts=3, within=5.0,
        )

    Children start in spec order and stop in reverse order, each within its
    ``shutdown_timeout``. When a child exits, its restart type decides whether it is
    restarted and the strategy decides which siblings are restarted with it. Restarts are
    limited: more than ``max_restarts`` within ``within`` seconds (counted over all children)
    makes the supervisor stop every child and raise
    :class:`~triactor.RestartIntensityExceeded` to its parent, which counts that as a crash of
    this child. The mailbox of a restarted actor survives: queued messages are handled by the
    new incarnation. A supervisor restarted by its parent starts again from ``children``:
    dynamic children (``system.start_child``) end with the incarnation that started them.

    A graceful shutdown drains every child's mailbox before it stops; a child that crashes
    while draining is restarted alone (within the restart budget and its deadline) to finish
    it. A child that fails to start is retried after its backoff, or a short one by default.

    Args:
        name: the supervisor's name (unique in the system, like an actor's).
        children: ChildSpecs, Supervisors and Routers, in start order; names must be
            distinct.
        strategy: see :class:`Strategy`.
        max_restarts: the restart intensity: the most restarts allowed within ``within``
            seconds, over all children (>= 0).
        within: the length of that window, in seconds (> 0).
        restart: this supervisor's restart type as a child of another supervisor.
        shutdown_timeout: how long stopping the whole subtree may take; default: unbounded
            (each child is still bounded by its own timeout).
        backoff: the default :class:`Backoff` for children whose spec has none.

    Raises:
        TypeError: if a child is neither a ChildSpec nor a Supervisor, or an option has the
            wrong type.
        ValueError: for a bad name, duplicate child names, or intensity values out of range.
    """

    __slots__ = (
        "backoff",
        "children",
        "max_restarts",
        "name",
        "restart",
        "shutdown_timeout",
        "strategy",
        "within",
    )

    def __init__(
        self,
        name: str,
        children: Sequence[ChildSpec | Supervisor | SubtreeSpec] = (),
        *,
        strategy: Strategy = Strategy.ONE_FOR_ONE,
        max_restarts: int = 3,
        within: float = 5.0,
        restart: Restart = Restart.PERMANENT,
        shutdown_timeout: float | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.name = _valid_name(name, "Supervisor")
        if not isinstance(strategy, Strategy):
            raise TypeError(
                f"supervisor {name!r}: strategy must be a triactor.Strategy, got {strategy!r}"
            )
        if not isinstance(restart, Restart):
            raise TypeError(
                f"supervisor {name!r}: restart must be a triactor.Restart, got {restart!r}"
            )
        if not isinstance(max_restarts, int) or isinstance(max_restarts, bool) or max_restarts < 0:
            raise ValueError(
                f"supervisor {name!r}: max_restarts must be an int >= 0, got {max_restarts!r}"
            )
        if not isinstance(within, int | float) or not within > 0:
            raise ValueError(
                f"supervisor {name!r}: within must be a number of seconds > 0, got {within!r}"
            )
        if shutdown_timeout is not None and not shutdown_timeout >= 0:
            raise ValueError(
                f"supervisor {name!r}: shutdown_timeout must be >= 0, got {shutdown_timeout}"
            )
        seen: set[str] = set()
        for child in children:
            if not isinstance(child, ChildSpec | Supervisor | SubtreeSpec):
                raise TypeError(
                    f"supervisor {name!r}: children must be ChildSpec, Supervisor or Router, "
                    f"got {child!r}; wrap an Actor class as ChildSpec(MyActor, name=...)"
                )
            if child.name in seen:
                raise ValueError(f"supervisor {name!r}: two children are named {child.name!r}")
            seen.add(child.name)
        self.children: tuple[ChildSpec | Supervisor | SubtreeSpec, ...] = tuple(children)
        self.strategy = strategy
        self.max_restarts = max_restarts
        self.within = float(within)
        self.restart = restart
        self.shutdown_timeout = shutdown_timeout
        self.backoff = backoff

    def __repr__(self) -> str:
        return (
            f"Supervisor({self.name!r}, {len(self.children)} children, "
            f"strategy={self.strategy.name}, max_restarts={self.max_restarts}, "
            f"within={self.within})"
        )

    async def spawn_into(self, system: ActorSystem, nursery: trio.Nursery) -> ActorRef:
        """Start this tree as a top-level member of ``system`` (``system.spawn(tree)`` does this).

        Returns the supervisor's ref once every child has started.

        Raises:
            RestartIntensityExceeded: if the children keep failing to start.
        """
        from ._supervisor import spawn_supervisor

        return await spawn_supervisor(system, self)
