"""Waiting for what another process or a real server does, bounded and observed."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

import trio

#: How often a condition on another process or on a real server is looked at again.
POLL_SECONDS = 0.02


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]], seconds: float, what: str
) -> None:
    """Return once ``condition()`` is true; fail after ``seconds`` naming ``what``.

    For state that no event of this process announces (a node process's output file, a
    stream's length on the server): it is looked at every few milliseconds, never assumed.
    """
    with trio.move_on_after(seconds):
        while True:
            result = condition()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return
            await trio.sleep(POLL_SECONDS)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")
