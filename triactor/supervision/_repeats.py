"""Counting start failures that repeat identically, so that each is logged once, with a count."""

from __future__ import annotations

from typing import final

from .._tracebacks import failure_signature

__all__ = ["StartFailures"]


@final
class StartFailures:
    """The last start failure of each child of a supervisor, and how many times in a row.

    A typo in a ``ChildSpec`` or an ``on_start`` that cannot reach its database fails the
    same way at every restart. The supervisor logs the first failure with its traceback and
    only counts the identical ones that follow (same type, text and raising line).
    """

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: dict[str, tuple[tuple[str, str, str, int], int]] = {}

    def __repr__(self) -> str:
        return f"<StartFailures of {len(self._last)} children>"

    def count(self, child: str, error: BaseException) -> int:
        """Record a start failure of ``child``; return how many times in a row it was this one.

        1 means a new failure (the first, or different from the previous one).
        """
        signature = failure_signature(error)
        last = self._last.get(child)
        times = last[1] + 1 if last is not None and last[0] == signature else 1
        self._last[child] = (signature, times)
        return times

    def clear(self, child: str) -> int:
        """Forget ``child``'s start failures (it started); return how many in a row there were."""
        last = self._last.pop(child, None)
        return 0 if last is None else last[1]
