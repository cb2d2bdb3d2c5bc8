"""Where triactor's log records go: the standard ``logging`` module unless someone asks otherwise.

loguru is the engine: triactor's modules (and ``Actor.log``) log through :data:`logger`, a
loguru logger. It is triactor's own logger, with its own handlers and none of the global
``loguru.logger``'s, so that an application embedding triactor never gets triactor's lines on
loguru's default stderr sink. One handler, the route, forwards every record:

- to the standard library (the default): ``logging.getLogger(<module name>)`` handles it, so
  ``logging.basicConfig(...)``, ``logging.getLogger("triactor").setLevel(...)``, Django's
  ``LOGGING`` and the like decide what is shown and where. With no configuration at all,
  Python's last-resort handler prints warnings and errors only;
- or to loguru's global ``logger`` (:func:`configure_logging` ``to="loguru"``; the
  ``triactor`` command does this after installing its own sinks), under the record's own
  module name, so that ``logger.disable("triactor")`` silences triactor and nothing else.

Crash tracebacks are compact (:mod:`triactor._tracebacks`) unless ``full_tracebacks`` is set,
and message contents are kept out of log lines unless ``message_contents`` is set. Logging
never sits on the message path; where a record could be frequent (a dead letter dropped by an
overflow policy) the caller asks :func:`enabled` first, which costs a dict lookup.
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
from typing import TYPE_CHECKING, Any, Final, Literal, cast

import loguru

from ._tracebacks import format_exception as _format_exception

if TYPE_CHECKING:
    from types import FrameType

    from loguru import Logger, Message, Record

__all__ = [
    "add_sink",
    "configure_logging",
    "enabled",
    "format_exception",
    "logger",
    "message_contents",
    "remove_sink",
    "settings",
    "use_loguru",
]

Route = Literal["logging", "loguru"]


def _new_logger() -> Logger:
    # loguru makes its global logger exactly this way (loguru/__init__.py); loguru offers no
    # public way to make a logger with handlers of its own (copy.deepcopy fails on the default
    # stderr sink), hence the private module.
    module: Any = importlib.import_module("loguru._logger")
    return cast(
        "Logger",
        module.Logger(
            core=module.Core(),
            exception=None,
            depth=0,
            record=False,
            lazy=False,
            colors=False,
            raw=False,
            capture=True,
            patchers=[],
            extra={},
        ),
    )


#: triactor's own loguru logger: every triactor module logs through it, never through
#: ``loguru.logger``. Where its records go is decided by :func:`configure_logging`.
logger: Final[Logger] = _new_logger()

_lock = threading.Lock()
_route: Route = "logging"
_route_id: int | None = None
_route_level = 0  # the least loguru level the route forwards
_full_tracebacks = False
_message_contents = False
_sinks: dict[int, int] = {}  # sinks added with add_sink: loguru id -> least level
_sinks_least = 1 << 30  # the least level of those sinks (above every level when none)
_stdlib_loggers: dict[str, logging.Logger] = {}

_STDLIB_LEVELS = (logging.CRITICAL, logging.ERROR, logging.WARNING, logging.INFO)
_STANDARD = frozenset((*_STDLIB_LEVELS, logging.DEBUG))
# Attributes a LogRecord has already: a bound value of the same name is not copied onto it.
_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def _stdlib_level(level: int) -> int:
    """loguru's level number as a standard one (TRACE is DEBUG, SUCCESS is INFO)."""
    for standard in _STDLIB_LEVELS:
        if level >= standard:
            return standard
    return logging.DEBUG


def _stdlib_logger(name: str) -> logging.Logger:
    found = _stdlib_loggers.get(name)
    if found is None:
        found = _stdlib_loggers[name] = logging.getLogger(name)
    return found


def _plain(record: Record) -> str:
    # A callable format: loguru then formats no traceback of its own (the routes do).
    return "{message}"


# -- the routes ---------------------------------------------------------------------------------


def _to_logging(message: Message) -> None:
    """The default route: hand the record to ``logging.getLogger(record["name"])``."""
    record = message.record
    name = record["name"] or "triactor"
    target = _stdlib_logger(name)
    level = _stdlib_level(record["level"].no)
    if not target.isEnabledFor(level):
        return
    exception = record["exception"]
    exc_info = None
    if exception is not None and exception.value is not None:
        exc_info = (exception.type, exception.value, exception.traceback)
    extra = {key: value for key, value in record["extra"].items() if key not in _RESERVED}
    log_record = target.makeRecord(
        name,
        level,
        record["file"].path,
        record["line"],
        record["message"],
        (),
        exc_info,  # type: ignore[arg-type]
        func=record["function"],
        extra=extra,
    )
    if exception is not None and exception.value is not None and not _full_tracebacks:
        # Formatters print a preset exc_text instead of formatting exc_info themselves;
        # exc_info stays for handlers that want the exception object (error trackers).
        log_record.exc_text = _format_exception(exception.value)
    target.handle(log_record)


def _caller_depth(record: Record) -> int:
    """How many frames above the route the call that made ``record`` is (0 if not found)."""
    frame: FrameType | None = sys._getframe(2)  # the route's caller: loguru's handler
    path, line, function = record["file"].path, record["line"], record["function"]
    for depth in range(1, 32):
        if frame is None:
            break
        code = frame.f_code
        if frame.f_lineno == line and code.co_name == function and code.co_filename == path:
            return depth
        frame = frame.f_back
    return 0


def _to_loguru(message: Message) -> None:
    """The loguru route: log the record again on loguru's global logger, unchanged."""
    record = message.record

    def restore(copy: Record) -> None:
        for key in ("elapsed", "file", "function", "line", "message", "module", "name", "time"):
            copy[key] = record[key]
        copy["extra"].update(record["extra"])

    # At the depth of the original call, loguru reads the caller's module name from its frame:
    # logger.disable("triactor") then silences triactor's records, not the actors' own.
    target = loguru.logger.patch(restore).opt(
        depth=_caller_depth(record), exception=record["exception"]
    )
    level = record["level"]
    try:
        target.log(level.name, "")
    except ValueError:  # a level only triactor's logger knows
        target.log(level.no, "")


# -- configuration ------------------------------------------------------------------------------


def _set_route(route: Route, level: int) -> None:
    global _route, _route_id, _route_level
    with _lock:
        sink = _to_logging if route == "logging" else _to_loguru
        new_id = logger.add(
            sink, level=level, format=_plain, backtrace=False, diagnose=False, catch=True
        )
        if _route_id is not None:
            logger.remove(_route_id)
        _route, _route_id, _route_level = route, new_id, level


def configure_logging(
    *,
    to: Route | None = None,
    full_tracebacks: bool | None = None,
    message_contents: bool | None = None,
) -> None:
    """Choose where triactor's log records go and what they show; None keeps a setting.

    By default every record goes to the standard ``logging`` module, to the logger named
    after the module that logged it (``triactor.supervision._supervisor``...; an actor's
    ``self.log`` logs under the actor's own module), so the application's logging
    configuration decides what is shown: ``logging.getLogger("triactor").setLevel(
    logging.ERROR)`` keeps only errors. A record bound with an actor path carries it as the
    ``actor`` attribute (``%(actor)s``), and crash tracebacks come preformatted in compact
    form (``exc_text``), the exception itself still in ``exc_info``.

    Args:
        to: ``"logging"`` (the default) or ``"loguru"``: send every record to loguru's global
            ``logger`` instead, under its own module name, so your sinks, levels and
            ``logger.disable("triactor")`` apply. Tracebacks are then formatted by your
            sinks: give them ``diagnose=False``, or they show local variable values (message
            contents, secrets).
        full_tracebacks: show whole tracebacks, triactor's frames included, instead of the
            compact form (the user's frames, each run of library frames folded into a line).
        message_contents: include the ``repr`` of messages in log lines (dead letters). Off
            by default: messages may carry personal data or secrets; lines name the message
            type, the actor and the reason.

    Raises:
        ValueError: if ``to`` is neither ``"logging"`` nor ``"loguru"``.
        TypeError: if a flag is not a bool.
    """
    global _full_tracebacks, _message_contents
    if to is not None and to not in ("logging", "loguru"):
        raise ValueError(f"configure_logging(to=...) takes 'logging' or 'loguru', got {to!r}")
    flags = {"full_tracebacks": full_tracebacks, "message_contents": message_contents}
    for flag, value in flags.items():
        if value is not None and not isinstance(value, bool):
            raise TypeError(f"configure_logging({flag}=...) takes a bool, got {value!r}")
    if to is not None:
        _set_route(to, 0)
    if full_tracebacks is not None:
        _full_tracebacks = full_tracebacks
    if message_contents is not None:
        _message_contents = message_contents


def use_loguru(level: int) -> None:
    """Route records of ``level`` or more to loguru's global logger (for the launcher).

    Records below ``level`` then cost nothing: loguru drops them before building them.
    """
    _set_route("loguru", level)


def settings() -> tuple[Route, bool, bool]:
    """The current route, ``full_tracebacks`` and ``message_contents`` (to restore them)."""
    return _route, _full_tracebacks, _message_contents


def enabled(name: str, level: int) -> bool:
    """Whether a record of ``level`` logged by module ``name`` would be shown anywhere.

    Cheap (a dict lookup and a cached level check): for records that may come often.
    """
    if level >= _sinks_least:
        return True
    if _route == "logging":
        target = _stdlib_loggers.get(name) or _stdlib_logger(name)
        return target.isEnabledFor(level if level in _STANDARD else _stdlib_level(level))
    return level >= _route_level


def message_contents() -> bool:
    """Whether log lines may include message contents (``configure_logging``)."""
    return _message_contents


def format_exception(error: BaseException) -> str:
    """``error``'s traceback for a log or a report: compact unless ``full_tracebacks``."""
    return _format_exception(error, full=_full_tracebacks)


def add_sink(sink: Any, *, level: int = 0, **options: Any) -> int:
    """Add a loguru sink to triactor's logger beside the route (tests use it); return its id."""
    global _sinks_least
    options.setdefault("diagnose", False)
    sink_id = logger.add(sink, level=level, **options)
    _sinks[sink_id] = level
    _sinks_least = min(_sinks.values())
    return sink_id


def remove_sink(sink_id: int) -> None:
    """Remove a sink that :func:`add_sink` added."""
    global _sinks_least
    _sinks.pop(sink_id, None)
    _sinks_least = min(_sinks.values(), default=1 << 30)
    logger.remove(sink_id)


_set_route("logging", 0)
