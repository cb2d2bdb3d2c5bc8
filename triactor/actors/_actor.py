"""The ``Actor`` base class that users subclass."""

from __future__ import annotations

import sys
import types
import typing
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, Generic

import trio
from typing_extensions import TypeVar

from ..mailbox import Overflow
from ._handler import HandlerTable, build_table
from ._timers import Timers

if TYPE_CHECKING:
    from loguru import Logger

    from ._cell import ActorCell
    from ._ref import ActorRef
    from ._system import ActorSystem

__all__ = ["Actor"]

#: The messages an actor declares it takes, and what its handlers return (for type checkers).
M = TypeVar("M", default=Any)
R = TypeVar("R", default=Any)


class Actor(Generic[M, R]):
    """The base class of every actor: state plus handlers, one message at a time.

    An actor owns its state and changes it only in its handlers, which run one message at a
    time (unless ``max_concurrency`` says otherwise), so the state needs no locks. Other code
    never calls an actor's methods: it holds an :class:`~triactor.ActorRef` and sends messages
    with ``tell`` (fire and forget) or ``ask`` (request and reply).

    Subclass it, give it handlers with :func:`~triactor.handler`, and spawn it::

        class Counter(Actor):
            mailbox_capacity = 100

            def __init__(self, start: int = 0) -> None:
                self.total = start

            @handler
            async def add(self, msg: Add) -> None:
                self.total += msg.amount

            @handler
            async def get(self, msg: Total) -> int:
                return self.total

        counter = await system.spawn(Counter, 5, name="counter")

    The constructor receives the arguments given to ``spawn`` (or a ``ChildSpec``); the actor
    context (``self.ref``, ``self.name``, ``self.log``...) is already set when it runs. A
    supervisor restarts an actor by constructing a fresh instance: state kept on the instance is
    lost on a crash, while the mailbox and the ref survive.

    Class attributes (defaults for every spawn, each overridable per spawn or ``ChildSpec``):

    - ``mailbox_capacity`` (1000): the most queued messages.
    - ``overflow`` (``Overflow.BLOCK``): what a full mailbox does.
    - ``max_concurrency`` (1): how many messages are handled at once. Above 1, handlers run
      in concurrent tasks and may interleave at every ``await``.
    - ``shutdown_timeout`` (5.0): seconds a stop may take, draining and ``on_stop`` each
      included, before the actor is cancelled.
    - ``priority`` (None): the pool priority class its handlers use by default in
      ``PriorityPool.acquire``.
    - ``resume_on`` (``()``): exception types that do not crash the actor. A handler that
      raises one of them fails only that message: the asker gets the exception (a message
      sent with ``tell`` goes to dead letters, with the exception), it counts as a failure in
      the statistics, and the actor goes on with its state and its next message. Everything
      else crashes it (Erlang's "let it crash"; Akka's resume is this opt-in)::

          class Cache(Actor):
              resume_on = (KeyError,)  # an unknown key is the caller's mistake

    What happens when an exception does crash an actor: the message being handled goes to dead
    letters (its asker gets the exception), the crash is logged once with its traceback, and
    then a supervised actor is restarted by its supervisor's rule, while an actor spawned
    directly on the system, having no supervisor, ends the ``open_actor_system`` block with
    that exception.

    Typed refs: declare what the actor takes and what its handlers return, and ``spawn`` gives
    back an ``ActorRef[M, R]`` on which a type checker flags a message of another type and a
    reply used as another type (``class Fetcher(Actor[Fetch, Found])``; several message
    types: ``Actor[Add | Total, int | None]``). The class statement checks that every
    declared message type has a handler; that the handlers return ``R`` is the type
    checker's job on each handler's own annotation. A bare ``Actor`` is ``Actor[Any, Any]``.

    The class statement raises :class:`TypeError` or :class:`ValueError` for a bad handler or a
    bad class attribute, naming the class.
    """

    mailbox_capacity: ClassVar[int] = 1000
    overflow: ClassVar[Overflow] = Overflow.BLOCK
    max_concurrency: ClassVar[int] = 1
    shutdown_timeout: ClassVar[float] = 5.0
    priority: ClassVar[str | None] = None
    resume_on: ClassVar[tuple[type[Exception], ...]] = ()

    __triactor_handlers__: ClassVar[HandlerTable] = HandlerTable("Actor", {})
    _triactor_cell: ActorCell
    # This incarnation's timers, made on first use of ``self.timers``.
    _triactor_timers: Timers | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # The frame running the class statement, so that string annotations naming classes
        # local to a function still resolve.
        frame = sys._getframe(1)
        localns = dict(frame.f_locals) if frame is not None else {}
        bases = [
            base.__dict__["__triactor_handlers__"]
            for base in cls.__mro__[1:]
            if "__triactor_handlers__" in base.__dict__
        ]
        cls.__triactor_handlers__ = build_table(cls, bases, localns)
        _check_declared_messages(cls)
        validate_options(
            cls.__qualname__,
            mailbox_capacity=cls.mailbox_capacity,
            overflow=cls.overflow,
            max_concurrency=cls.max_concurrency,
            shutdown_timeout=cls.shutdown_timeout,
        )
        cls.resume_on = valid_resume_on(cls.__qualname__, cls.resume_on)

    # -- lifecycle hooks ------------------------------------------------------------------------

    async def on_start(self) -> None:
        """Run before the first message. An exception here fails the start.

        At ``spawn`` the caller gets the exception; under a supervisor it is a crash that counts
        against the restart budget.
        """

    async def on_stop(self) -> None:
        """Run when the actor stops for any reason: a stop request, a crash or a cancellation.

        It runs shielded from cancellation but bounded by ``shutdown_timeout``; an exception
        here is logged and does not hide the reason the actor stopped. It never runs beside a
        handler: if a sync handler's thread outlived the stop, it runs once that thread has
        returned, and is skipped (with a warning) if the thread is still running when
        ``shutdown_timeout`` passes.
        """

    async def _triactor_run(
        self,
        start_and_serve: Callable[[Actor, trio.TaskStatus[None]], Awaitable[None]],
        instance: Actor,
        task_status: trio.TaskStatus[None],
    ) -> None:
        # The runtime's hook around one incarnation; a supervisor overrides it to hold the
        # nursery its children run in. Not part of the public API.
        await start_and_serve(instance, task_status)

    # -- the actor's context --------------------------------------------------------------------

    @property
    def ref(self) -> ActorRef[M, R]:
        """This actor's own ref, to pass to others (for replies, subscriptions, watches)."""
        return self._triactor_cell.ref

    @property
    def name(self) -> str:
        """The actor's name, unique in its system."""
        return self._triactor_cell.name

    @property
    def path(self) -> str:
        """The actor's path (its supervisors' names and its own), e.g. ``/root/workers/w1``."""
        return self._triactor_cell.path

    @property
    def system(self) -> ActorSystem:
        """The system the actor runs in, to spawn, look up and watch other actors."""
        return self._triactor_cell.system

    @property
    def log(self) -> Logger:
        """A loguru logger bound with ``actor=<path>``.

        Its records go where triactor's own go: to the standard ``logging`` module under the
        actor's module name by default, or to loguru's sinks (``triactor.configure_logging``,
        and under the ``triactor`` command).
        """
        return self._triactor_cell.log

    @property
    def timers(self) -> Timers:
        """This incarnation's :class:`~triactor.Timers`: messages to itself, later or periodic.

        ``self.timers.every("tick", Tick(), interval=5.0)``, ``self.timers.once(key, msg,
        after=s)``, ``self.timers.cancel(key)``. They are cancelled when the actor stops or
        restarts.
        """
        timers = self._triactor_timers
        if timers is None:
            timers = self._triactor_timers = Timers(self._triactor_cell)
        return timers

    def stop(self) -> None:
        """Ask this actor to stop once the current message is handled. Returns at once.

        The stop is a normal exit: a permanent child is restarted, a transient or temporary
        one is not. Like every stop it is bounded by ``shutdown_timeout``: past it, the actor is
        cancelled.
        """
        cell = self._triactor_cell
        cell.request_stop(deadline=cell.stop_deadline())

    def __repr__(self) -> str:
        cell = self.__dict__.get("_triactor_cell")
        where = cell.path if cell is not None else "not spawned"
        return f"<{type(self).__qualname__} actor {where}>"


def _check_declared_messages(cls: type[Actor[Any, Any]]) -> None:
    """Check that each message type named in ``Actor[M, R]`` among the bases has a handler.

    Raises:
        TypeError: naming the class and the message type without a handler.
    """
    for base in getattr(cls, "__orig_bases__", ()):
        if typing.get_origin(base) is not Actor:
            continue
        declared = typing.get_args(base)[0]
        if isinstance(declared, types.UnionType) or typing.get_origin(declared) is typing.Union:
            members = typing.get_args(declared)
        else:
            members = (declared,)
        for member in members:
            if not isinstance(member, type) or member is object:
                continue  # Any, a type variable, a generic alias: nothing to check
            if cls.__triactor_handlers__.lookup(member) is None:
                raise TypeError(
                    f"{cls.__qualname__} declares Actor[{member.__qualname__}, ...] but has no "
                    f"handler for {member.__qualname__}; add an @handler method taking it, or "
                    "drop it from the declaration"
                )


def validate_options(
    owner: str,
    *,
    mailbox_capacity: object,
    overflow: object,
    max_concurrency: object,
    shutdown_timeout: object,
) -> None:
    """Check an actor's options where they enter (class statement, spawn, ChildSpec).

    Raises:
        TypeError: if an option has the wrong kind of value.
        ValueError: if an option is out of range.
    """
    for option, value in (
        ("mailbox_capacity", mailbox_capacity),
        ("max_concurrency", max_concurrency),
    ):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{owner}: {option} must be an int, got {value!r}")
        if value < 1:
            raise ValueError(f"{owner}: {option} must be at least 1, got {value}")
    if not isinstance(overflow, Overflow):
        raise TypeError(
            f"{owner}: overflow must be a triactor.Overflow (BLOCK, DROP_NEWEST, DROP_OLDEST, "
            f"FAIL), got {overflow!r}"
        )
    if not isinstance(shutdown_timeout, int | float) or isinstance(shutdown_timeout, bool):
        raise TypeError(
            f"{owner}: shutdown_timeout must be a number of seconds, got {shutdown_timeout!r}"
        )
    if not shutdown_timeout >= 0:
        raise ValueError(f"{owner}: shutdown_timeout must be >= 0 seconds, got {shutdown_timeout}")


def valid_resume_on(owner: str, value: object) -> tuple[type[Exception], ...]:
    """Check a ``resume_on`` option; return it as a tuple (one class is accepted alone).

    Raises:
        TypeError: if it is not an Exception subclass or a tuple of them.
    """
    types = value if isinstance(value, tuple) else (value,)
    for kind in types:
        if not (isinstance(kind, type) and issubclass(kind, Exception)):
            raise TypeError(
                f"{owner}: resume_on must be a tuple of Exception subclasses, got {value!r} "
                "(trio.Cancelled, KeyboardInterrupt and SystemExit always propagate)"
            )
    return types
