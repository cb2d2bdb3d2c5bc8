"""``check_messages=True``: every message must be plain data that round-trips through cattrs.

A development and test aid that keeps messages carriable by a remote transport. Its errors name
the message type, the field and the offending type, never the value: a message may carry
megabytes, and an error message must not.
"""

from __future__ import annotations

from typing import Final, final

import cattrs

from .._safe import type_name
from ._system_message import SystemMessage

__all__ = ["MessageChecker"]

_PLAIN_SCALARS: Final = (str, int, float, bool, type(None))
_PLAIN: Final = "plain data (str, int, float, bool, None, and lists and dicts of them)"
_FIX: Final = "make messages attrs classes of plain data (no handles, locks or lambdas)"
#: The most characters of cattrs' own error text quoted in a check error.
_DETAIL_LIMIT: Final = 300

Path = list[str | int]


def _first_non_plain(data: object) -> tuple[Path, str] | None:
    """Where (a path, innermost first) and what (a type name) the first non-plain value is."""
    if isinstance(data, _PLAIN_SCALARS):
        return None
    if isinstance(data, list | tuple):
        for index, item in enumerate(data):
            found = _first_non_plain(item)
            if found is not None:
                found[0].append(index)
                return found
        return None
    if isinstance(data, dict):
        for key, value in data.items():
            if not isinstance(key, str):
                return [f"<a {type_name(key)} key>"], type_name(key)
            found = _first_non_plain(value)
            if found is not None:
                found[0].append(key)
                return found
        return None
    return [], type_name(data)


def _format_path(path: Path) -> str:
    """``items[2].name`` from a path given innermost first."""
    text = ""
    for part in reversed(path):
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def _cattrs_detail(exc: Exception) -> str:
    """cattrs' own account of a structuring failure: paths and expected types, bounded."""
    try:
        lines = cattrs.transform_error(exc)
    except Exception:
        lines = [type_name(exc)]
    text = "; ".join(lines[:5])
    return text if len(text) <= _DETAIL_LIMIT else f"{text[:_DETAIL_LIMIT]}..."


@final
class MessageChecker:
    """Checks messages for plain data and a round trip through ``converter``, per message."""

    __slots__ = ("_converter",)

    def __init__(self, converter: cattrs.Converter) -> None:
        self._converter = converter

    def check(self, message: object) -> None:
        """Check ``message``; see :meth:`ActorSystem.check_message`.

        Raises:
            TypeError: naming the message type, and the field and its type when a value is not
                plain data; never quoting the value itself.
        """
        if isinstance(message, SystemMessage):
            return
        kind = type_name(message)
        try:
            data = self._converter.unstructure(message)
        except Exception as exc:
            raise TypeError(
                f"message {kind} cannot be serialized for a transport: cattrs cannot "
                f"unstructure it ({type_name(exc)}); {_FIX}"
            ) from None
        found = _first_non_plain(data)
        if found is not None:
            path, offender = found
            where = f"its field {_format_path(path)}" if path else "the message itself"
            raise TypeError(
                f"message {kind} cannot be serialized for a transport: {where} holds a "
                f"{offender}, which is not {_PLAIN}; {_FIX}"
            )
        try:
            self._converter.structure(data, type(message))
        except Exception as exc:
            raise TypeError(
                f"message {kind} cannot be serialized for a transport: it does not structure "
                f"back from its plain data ({_cattrs_detail(exc)}); {_FIX}"
            ) from None
