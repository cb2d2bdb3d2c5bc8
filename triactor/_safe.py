"""Describing user objects without trusting them: crash handling must not depend on them.

A handler's exception is a user object: its ``__repr__`` may raise, its ``__notes__`` may not be
a list, its text may be megabytes long. The runtime describes such objects only through these
helpers, which never raise and bound what they return.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Final

__all__ = ["add_note", "safe_repr", "safe_str", "type_name"]

#: The most characters of a user object's repr that the runtime puts in a log line or a detail.
REPR_LIMIT: Final = 500


def type_name(obj: object) -> str:
    """The qualified name of ``obj``'s class (``type()`` cannot be faked, ``__class__`` can)."""
    return type(obj).__qualname__


def safe_repr(obj: object, limit: int = REPR_LIMIT) -> str:
    """``repr(obj)``, cut to ``limit`` characters; a placeholder if ``repr`` raises."""
    return _safe_text(repr, "repr", obj, limit)


def safe_str(obj: object, limit: int = REPR_LIMIT) -> str:
    """``str(obj)``, cut to ``limit`` characters; a placeholder if ``str`` raises."""
    return _safe_text(str, "str", obj, limit)


def _safe_text(render: Callable[[object], object], what: str, obj: object, limit: int) -> str:
    try:
        text = render(obj)
        if not isinstance(text, str):
            raise TypeError(f"__{what}__ returned a non-string")
    except Exception as exc:
        return f"<{type_name(obj)} object (its {what} raised {type_name(exc)})>"
    if len(text) > limit:
        return f"{text[:limit]}... ({len(text)} characters)"
    return text


def add_note(exc: BaseException, note: str) -> None:
    """Add ``note`` to ``exc``; if its ``__notes__`` cannot take one, leave the exception as is."""
    with contextlib.suppress(Exception):  # __notes__ replaced by something not a list
        exc.add_note(note)
