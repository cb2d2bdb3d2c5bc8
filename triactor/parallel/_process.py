"""``run_in_process``: a CPU-bound function on another core, from an async handler.

Built on trio-parallel, the Trio-native process pool: its workers are cached and reused, a
cancelled call kills its worker (nothing keeps burning a core), and the function's exception
comes back with its remote traceback.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import TypeVar

import trio
import trio_parallel

__all__ = ["run_in_process"]

T = TypeVar("T")


def _check_sendable(fn: Callable[..., object]) -> str:
    """Return ``fn``'s name for messages; raise TypeError if it cannot reach a worker."""
    name = getattr(fn, "__qualname__", None) or repr(fn)
    if not callable(fn):
        raise TypeError(f"run_in_process takes a function, got {fn!r}")
    try:
        pickle.dumps(fn)  # a module-level function pickles by reference: microseconds
    except Exception as exc:
        raise TypeError(
            f"run_in_process cannot send {name} to a worker process: it does not pickle "
            f"({exc}). Pass a function defined at module level (not a lambda, a nested "
            "function or an actor's method), and its data as arguments"
        ) from exc
    return name


async def run_in_process(
    fn: Callable[..., T], *args: object, limiter: trio.CapacityLimiter | None = None
) -> T:
    """Run ``fn(*args)`` in a worker process, on another core, and return its result.

    Python runs one thread at a time (the GIL), so a plain ``def`` handler, which runs in a
    thread, keeps the event loop free from *blocking* but not from *computing*: pure-Python
    work in a thread still takes turns with the loop and with every other thread. A worker
    process has its own interpreter and its own core. Use this for CPU-bound steps (parsing,
    scoring, inference, image work) that take milliseconds or more; use a plain ``def``
    handler for blocking I/O, and ``async def`` for everything that waits.

    One line in an async handler::

        @handler
        async def score(self, doc: Document) -> int:
            return await triactor.run_in_process(score_text, doc.text)

    An actor handles one message at a time, so it keeps one core busy; to keep several busy,
    give the actor ``max_concurrency = N`` or put it behind a :class:`~triactor.Router`.

    - ``fn`` and ``args`` are pickled to the worker and the result back, so ``fn`` must be
      importable (defined at module level) and the arguments plain data. For keyword
      arguments use :func:`functools.partial`.
    - Cancellation is honoured: if the caller is cancelled (an actor stopped past its
      ``shutdown_timeout``, a cancel scope, Ctrl-C), the worker process is killed at once and
      ``trio.Cancelled`` propagates. The next call starts a fresh worker.
    - ``fn``'s exception is raised here, as itself, with the worker's traceback and a note
      naming ``fn``; in a handler it then fails the ask and crashes the actor like any
      handler error.
    - At most ``limiter.total_tokens`` calls run at once; by default trio-parallel's
      per-program limiter, one per core (``os.cpu_count()``). Calls beyond it wait their
      turn, cancellably.
    - Workers are started on first use (a few hundred milliseconds with the default
      ``spawn`` start method) and reused; idle ones exit after ten minutes. A program using
      this must guard its entry point with ``if __name__ == "__main__":``, because each
      worker imports the main module.

    This is trio-parallel's ``run_sync`` with cancellation switched on; call
    ``trio_parallel`` directly for its other options (worker contexts, ``init``/``retire``
    hooks, other start methods).

    Raises:
        TypeError: if ``fn`` cannot be sent to a worker (a lambda, a nested function, a bound
            method of an actor).
        trio_parallel.BrokenWorkerError: if the worker process died (killed from outside, a
            segfault in an extension).
        Exception: whatever ``fn`` raised.
    """
    name = _check_sendable(fn)
    try:
        result: T = await trio_parallel.run_sync(fn, *args, kill_on_cancel=True, limiter=limiter)
    except Exception as exc:
        exc.add_note(f"in triactor.run_in_process({name}, ...)")
        raise
    return result
