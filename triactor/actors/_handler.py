"""The ``@handler`` decorator and the per-class table that routes messages to handlers."""

from __future__ import annotations

import inspect
import sys
import types
import typing
from collections.abc import Callable
from typing import Any, Final, TypeVar, final

__all__ = ["HandlerEntry", "HandlerTable", "handler"]

F = TypeVar("F", bound=Callable[..., Any])

_MARK: Final = "__triactor_handler__"


def handler(fn: F) -> F:
    """Mark a method of an :class:`~triactor.Actor` subclass as the handler of a message type.

    The type comes from the annotation of the method's message parameter (the one after
    ``self``). A union (``msg: Add | Sub``) registers the method for each member. When a message
    arrives, the handler for the most specific class in the message type's MRO is chosen.

    ``async def`` handlers run on the Trio loop inside the actor's task. A plain ``def`` handler
    runs in a worker thread through ``trio.to_thread.run_sync``, so blocking code (a
    synchronous HTTP client, heavy computation) never stalls other actors; the actor still takes
    one message at a time. The handler's return value is the reply to an ``ask``.

    A thread cannot be cancelled. If a stop deadline (a restart, a shutdown, an abort) passes
    while a sync handler runs, the actor waits for it within its ``shutdown_timeout``; past
    that its incarnation ends without ``on_stop``, its next incarnation starts only once the
    thread has returned, and the message is counted then, once: as handled (the reply still
    reaches the asker, or dead letters as late) or as a crash. A handler that should stop early
    can poll ``trio.from_thread.check_cancelled()``.

    Example::

        class Counter(Actor):
            @handler
            async def add(self, msg: Add) -> None:
                self.total += msg.amount

    The class statement raises :class:`TypeError` (naming the class and method) if a handler has
    no usable annotation or two handlers of one class claim the same type.
    """
    if not callable(fn):
        raise TypeError(f"@handler decorates a method, got {fn!r}")
    setattr(fn, _MARK, True)
    return fn


@final
class HandlerEntry:
    """One routable handler: the function, whether it is async, and its method name."""

    __slots__ = ("fn", "is_async", "name")

    def __init__(self, fn: Callable[..., Any], name: str) -> None:
        self.fn = fn
        self.name = name
        self.is_async = inspect.iscoroutinefunction(fn)


@final
class HandlerTable:
    """Maps message types to handlers for one actor class, caching MRO lookups."""

    __slots__ = ("_async", "_cache", "_declared", "owner")

    def __init__(self, owner: str, declared: dict[type, HandlerEntry]) -> None:
        self.owner = owner
        self._declared = declared
        # Filled lazily: every message type seen, resolved through its MRO (None: no handler).
        self._cache: dict[type, HandlerEntry | None] = dict(declared)
        self._async: dict[type, Callable[..., Any]] = {
            kind: entry.fn for kind, entry in declared.items() if entry.is_async
        }

    @property
    def async_routes(self) -> dict[type, Callable[..., Any]]:
        """The message types resolved so far whose handler is ``async def``, and its function.

        The same dict for the table's life, filled by :meth:`lookup`: a hot loop may keep it
        and call ``lookup`` only for a type it does not find there.
        """
        return self._async

    @property
    def handled_types(self) -> tuple[type, ...]:
        """The message types with a declared handler, in declaration order."""
        return tuple(self._declared)

    def entries(self) -> tuple[HandlerEntry, ...]:
        """The declared handlers, in declaration order (one per message type)."""
        return tuple(self._declared.values())

    def lookup(self, message_type: type) -> HandlerEntry | None:
        """Return the handler for ``message_type`` (most specific class in its MRO wins)."""
        try:
            return self._cache[message_type]
        except KeyError:
            pass
        entry = None
        for klass in message_type.__mro__:
            entry = self._declared.get(klass)
            if entry is not None:
                break
        self._cache[message_type] = entry
        if entry is not None and entry.is_async:
            self._async[message_type] = entry.fn
        return entry


def _message_types(annotation: object, where: str) -> list[type]:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        members = typing.get_args(annotation)
    else:
        members = (annotation,)
    found: list[type] = []
    for member in members:
        origin = typing.get_origin(member)
        klass = origin if isinstance(origin, type) else member
        if not isinstance(klass, type) or klass is object or klass is typing.Any:
            raise TypeError(
                f"{where}: the message annotation {annotation!r} is not a class; annotate the "
                "message parameter with the message type, e.g. `msg: Add`"
            )
        found.append(klass)
    return found


def _annotation_of(fn: Callable[..., Any], where: str, localns: dict[str, Any]) -> object:
    params = list(inspect.signature(fn).parameters.values())
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if len(params) != 2 or any(param.kind not in positional for param in params):
        raise TypeError(
            f"{where}: a handler takes exactly (self, message), both positional; got "
            f"({', '.join(str(param) for param in params)})"
        )
    param = params[1]
    if param.annotation is inspect.Parameter.empty:
        raise TypeError(
            f"{where}: the message parameter {param.name!r} has no type annotation; annotate it "
            "with the message class the handler takes, e.g. `msg: Add`"
        )
    annotation = param.annotation
    if isinstance(annotation, str):
        module = sys.modules.get(fn.__module__)
        globalns = dict(vars(module)) if module is not None else {}
        try:
            # A quoted annotation under `from __future__ import annotations` is a string of a
            # string: resolve until it is not a string any more (as typing.get_type_hints does).
            for _ in range(3):
                if not isinstance(annotation, str):
                    break
                annotation = eval(annotation, globalns, localns)
        except Exception as exc:
            raise TypeError(
                f"{where}: cannot resolve the message annotation {param.annotation!r} ({exc}); "
                "define the message class at module level"
            ) from exc
    return annotation


def build_table(
    cls: type, bases_tables: list[HandlerTable], localns: dict[str, Any]
) -> HandlerTable:
    """Collect the handlers of ``cls`` (inheriting those of its bases) into a table.

    Raises:
        TypeError: if a handler has no usable annotation or two handlers of ``cls`` claim one
            message type.
    """
    declared: dict[type, HandlerEntry] = {}
    for table in reversed(bases_tables):
        declared.update(table._declared)
    own: dict[type, str] = {}
    redeclared: set[str] = set()
    for attr_name, value in vars(cls).items():
        fn = value.__func__ if isinstance(value, staticmethod | classmethod) else value
        if not getattr(fn, _MARK, False):
            continue
        where = f"{cls.__qualname__}.{attr_name}"
        if isinstance(value, staticmethod | classmethod):
            raise TypeError(f"{where}: a handler must be a plain method, not a {type(value)}")
        redeclared.add(attr_name)
        for message_type in _message_types(_annotation_of(fn, where, localns), where):
            if message_type in own:
                raise TypeError(
                    f"{cls.__qualname__}: handlers {own[message_type]!r} and {attr_name!r} both "
                    f"take {message_type.__qualname__}; keep one, or give one a subclass"
                )
            own[message_type] = attr_name
            declared[message_type] = HandlerEntry(fn, attr_name)
    # A subclass overriding a handler method by name replaces the parent's routes to it; if it
    # re-declares the method with @handler, the new annotation says what it takes, and the
    # parent's routes to that name for other types go (those types fall back through the MRO).
    for message_type, entry in list(declared.items()):
        if message_type not in own:
            if entry.name in redeclared:
                del declared[message_type]
                continue
            override = vars(cls).get(entry.name)
            if override is not None and override is not entry.fn and callable(override):
                declared[message_type] = HandlerEntry(override, entry.name)
    return HandlerTable(cls.__qualname__, declared)
