"""Unwrapping the exception groups that Trio nurseries raise where triactor owns the nursery."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import trio

__all__ = ["single_error", "unwrapped_group"]


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


def single_error(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """Return the one exception a group stands for, or None if it holds several distinct ones.

    ``Cancelled`` leaves are ignored when something else is there (they are the nursery
    cancelling its other tasks because of that error); one exception object reached through
    several paths counts once. A ``KeyboardInterrupt`` or ``SystemExit`` always wins, so that
    they propagate as themselves.
    """
    distinct: dict[int, BaseException] = {}
    for leaf in _leaves(group):
        distinct.setdefault(id(leaf), leaf)
    leaves = list(distinct.values())
    for leaf in leaves:
        if isinstance(leaf, KeyboardInterrupt | SystemExit):
            return leaf
    meaningful = [leaf for leaf in leaves if not isinstance(leaf, trio.Cancelled)]
    if len(meaningful) == 1:
        return meaningful[0]
    if not meaningful and leaves:
        return leaves[0]
    return None


@contextmanager
def unwrapped_group() -> Iterator[None]:
    """Re-raise a group holding one exception as that exception, with its own traceback.

    A group of several distinct errors propagates unchanged: none of them is dropped.
    """
    try:
        yield
    except BaseExceptionGroup as group:
        single = single_error(group)
        if single is None:
            raise
        # Keep the user's own cause; hide the group as context, it only wrapped this error.
        raise single from single.__cause__
