"""Configuring loguru for the ``triactor`` command: the only place triactor adds log sinks.

The command is a program, not a library: it owns the process's output. It replaces loguru's
global sinks with its own (so the application's own loguru records look the same), and routes
triactor's records there too (see :mod:`triactor._logging`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from loguru import logger

from .. import _logging

if TYPE_CHECKING:
    from loguru import Record

__all__ = ["LEVELS", "configure_logging"]

#: The log levels ``--log-level`` accepts (loguru's), least severe first.
LEVELS = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")


def _traceback(record: Record) -> str:
    """Put the record's traceback (compact unless ``--verbose``) into its extra fields."""
    exception = record["exception"]
    if exception is None or exception.value is None:
        return ""
    record["extra"]["traceback"] = _logging.format_exception(exception.value)
    return "\n{extra[traceback]}"


def _format(record: Record) -> str:
    where = "<cyan>{extra[actor]}</cyan> " if "actor" in record["extra"] else ""
    return (
        "<green>{time:HH:mm:ss.SSS}</green> <level>{level: <8}</level> "
        + where
        + "<level>{message}</level>"
        + _traceback(record)
        + "\n"
    )


def _json_format(record: Record) -> str:
    return "{message}" + _traceback(record)


def configure_logging(
    sink: Callable[[str], None],
    *,
    level: str = "INFO",
    json: bool = False,
    colorize: bool = False,
    full_tracebacks: bool = False,
    message_contents: bool = False,
) -> int:
    """Replace loguru's sinks with one that writes to ``sink``; return its loguru id.

    Lines show the time, the level, the actor path (when the record is bound with one) and
    the message, with the traceback of any exception: compact (the user's frames, library
    frames folded) unless ``full_tracebacks``. With ``json`` every record is one JSON object
    per line (loguru's ``serialize=True``: ``text``, and the whole ``record`` with its
    ``extra.actor`` and ``extra.traceback``), for log collectors. triactor's own records
    go to the same sink. Variable values are never shown in tracebacks (``diagnose=False``),
    and message contents only with ``message_contents``: they may hold secrets.

    Raises:
        ValueError: if ``level`` is not one of :data:`LEVELS`.
    """
    level = level.upper()
    if level not in LEVELS:
        raise ValueError(f"unknown log level {level!r}; use one of {', '.join(LEVELS)}")
    logger.remove()
    sink_id = logger.add(
        sink,
        level=level,
        format=_json_format if json else _format,
        serialize=json,
        colorize=colorize and not json,
        backtrace=False,
        diagnose=False,
    )
    _logging.configure_logging(full_tracebacks=full_tracebacks, message_contents=message_contents)
    _logging.use_loguru(logger.level(level).no)
    return sink_id
