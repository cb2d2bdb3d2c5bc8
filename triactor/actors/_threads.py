"""Sync handlers in worker threads, and the truth about a thread that a stop could not cancel.

A plain ``def`` handler runs in a worker thread. A stop deadline (a restart, a shutdown, an
abort) cancels the actor's task, but a thread cannot be cancelled: it runs on. The runtime must
not pretend otherwise. So a call whose task stopped waiting for it becomes an *orphan* of its
cell: its message is neither handled nor dead-lettered until the thread returns, and nothing
else of that actor runs meanwhile (neither ``on_stop`` nor the next incarnation). When the
thread returns, its outcome is accounted as if the handler had ended normally: a value counts
as handled (and answers the asker, or goes to dead letters as a late reply), an exception as a
crash (logged, dead-lettered, raised to the asker).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Final, Protocol, final

import outcome
import trio
from trio.lowlevel import enable_ki_protection

from .._logging import logger

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._request import Request

__all__ = ["HandlerThread", "ThreadOwner"]

_WAITING: Final = 0  # the worker thread has not started the handler
_RUNNING: Final = 1
_FINISHED: Final = 2
_SKIPPED: Final = 3  # given up before it started: the handler never runs
_ORPHANED: Final = 4  # given up while running: the thread reports back when it returns


class ThreadOwner(Protocol):
    """What a :class:`HandlerThread` reports to: the actor's cell."""

    @property
    def path(self) -> str:
        """The actor's path, for the log."""
        ...

    def thread_returned_late(self, call: HandlerThread) -> None:
        """Account the outcome of an orphaned call (called in the Trio thread)."""
        ...


@final
class HandlerThread:
    """One call of a sync handler in a worker thread, tracked until the thread returns."""

    __slots__ = (
        "_lock",
        "_state",
        "_token",
        "args",
        "done",
        "fn",
        "message",
        "outcome",
        "owner",
        "request",
    )

    def __init__(
        self,
        owner: ThreadOwner,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        message: object,
        request: Request | None,
    ) -> None:
        self.owner = owner
        self.fn = fn
        self.args = args
        self.message = message
        self.request = request
        #: The handler's result, once the thread has returned.
        self.outcome: outcome.Outcome[Any] | None = None
        #: Set when an orphaned call's thread has returned and its outcome was accounted.
        self.done: trio.Event | None = None
        self._lock = threading.Lock()
        self._state = _WAITING
        self._token = trio.lowlevel.current_trio_token()

    def run(self) -> outcome.Outcome[Any] | None:
        """Run the handler (in the worker thread); None if the call was given up before."""
        with self._lock:
            if self._state == _SKIPPED:
                return None
            self._state = _RUNNING
        result: outcome.Outcome[Any] = outcome.capture(self.fn, *self.args)
        with self._lock:
            orphaned = self._state == _ORPHANED
            self._state = _FINISHED
            self.outcome = result
        if orphaned:
            try:
                self._token.run_sync_soon(self.owner.thread_returned_late, self)
            except trio.RunFinishedError:
                self._log_after_the_run(result)
        return result

    @enable_ki_protection
    def give_up(self) -> bool:
        """The actor's task stops waiting (in the Trio thread).

        Returns whether the call is still the thread's to account for: True if the thread runs
        on (the call is now an orphan, reported later; ``done`` is set then) or has just
        returned (``outcome`` holds its result); False if the handler never started (and now
        never will).
        """
        done = trio.Event()
        with self._lock:
            if self._state == _WAITING:
                self._state = _SKIPPED
                return False
            if self._state == _RUNNING:
                self.done = done
                self._state = _ORPHANED
        return True

    @property
    def returned(self) -> bool:
        """Whether the thread has returned (its ``outcome`` is set)."""
        return self.outcome is not None

    def _log_after_the_run(self, result: outcome.Outcome[Any]) -> None:
        what = type(self.message).__qualname__
        if isinstance(result, outcome.Error):
            logger.bind(actor=self.owner.path).opt(exception=result.error).error(
                "the sync handler of actor {} for {} raised after the Trio run had ended: {}",
                self.owner.path,
                what,
                type(result.error).__qualname__,
            )
        else:
            logger.bind(actor=self.owner.path).warning(
                "the sync handler of actor {} for {} returned after the Trio run had ended; "
                "its reply was dropped",
                self.owner.path,
                what,
            )
