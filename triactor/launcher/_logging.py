"""Configuring loguru for the ``triactor`` command: the only place triactor adds log sinks."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from loguru import logger

if TYPE_CHECKING:
    from loguru import Record

__all__ = ["LEVELS", "configure_logging"]

#: The log levels ``--log-level`` accepts (loguru's), least severe first.
LEVELS = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")


def _format(record: Record) -> str:
    where = "<cyan>{extra[actor]}</cyan> " if "actor" in record["extra"] else ""
    return (
        "<green>{time:HH:mm:ss.SSS}</green> <level>{level: <8}</level> "
        + where
        + "<level>{message}</level>\n{exception}"
    )


def configure_logging(
    sink: Callable[[str], None], *, level: str = "INFO", json: bool = False, colorize: bool = False
) -> int:
    """Replace loguru's sinks with one that writes to ``sink``; return its loguru id.

    Lines show the time, the level, the actor path (when the record is bound with one) and
    the message, with the traceback of any exception. With ``json`` every record is one JSON
    object per line (loguru's ``serialize=True``: the text and the whole record, its
    ``extra.actor`` included), for log collectors. Variable values are never shown in
    tracebacks (``diagnose=False``): they may hold secrets.

    Raises:
        ValueError: if ``level`` is not one of :data:`LEVELS`.
    """
    level = level.upper()
    if level not in LEVELS:
        raise ValueError(f"unknown log level {level!r}; use one of {', '.join(LEVELS)}")
    logger.remove()
    return logger.add(
        sink,
        level=level,
        format="{message}" if json else _format,
        serialize=json,
        colorize=colorize and not json,
        backtrace=False,
        diagnose=False,
    )
