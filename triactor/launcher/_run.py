"""Running a supervision tree as a program: ``triactor.run`` and the signal handling it needs."""

from __future__ import annotations

import functools
import signal
import threading

import trio
from loguru import logger

from ..actors import ActorRef, ActorSystem, open_actor_system
from ..supervision import Supervisor

__all__ = ["run", "run_tree"]

_SHUTDOWN_SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def _stop_on_signals(
    system: ActorSystem, root: ActorRef, task_status: trio.TaskStatus[None]
) -> None:
    with trio.open_signal_receiver(*_SHUTDOWN_SIGNALS) as signals:
        task_status.started()
        received = 0
        async for signum in signals:
            received += 1
            name = signal.Signals(signum).name
            if received == 1:
                logger.warning(
                    "{} received: stopping {} gracefully (send it again to stop at once)",
                    name,
                    root.path,
                )
                # Stopping the root is a system-wide shutdown: the system's own shutdown
                # drains every mailbox, in reverse start order, within the deadlines.
                system.begin_shutdown()
            else:
                logger.warning("{} received again: cancelling every actor now", name)
                system.abort()


async def run_tree(tree: Supervisor, *, handle_signals: bool = True) -> None:
    """Run ``tree`` in a new actor system until it stops; the async core of :func:`run`.

    Returns when the root supervisor has stopped (a signal, or ``root.stop()``).

    Raises:
        RestartIntensityExceeded: if the root supervisor gives up.
    """
    async with open_actor_system() as system:
        root = await system.spawn(tree)
        async with trio.open_nursery() as nursery:
            if handle_signals:
                await nursery.start(_stop_on_signals, system, root)
            await system.watch(root)
            nursery.cancel_scope.cancel()


def run(tree: Supervisor, *, handle_signals: bool | None = None) -> None:
    """Run a supervision tree as a program: start Trio, the system and ``tree``; block until done.

    The synchronous entry point (the ``triactor run`` command uses it)::

        triactor.run(Supervisor("root", children=[ChildSpec(Counter, name="counter")]))

    SIGINT (Ctrl-C) and SIGTERM start a graceful shutdown: new messages are refused, mailboxes
    drain, actors stop in reverse start order, each within its ``shutdown_timeout``. A second
    signal cancels every actor at once (``on_stop`` still runs, bounded).

    Args:
        tree: the root supervisor spec.
        handle_signals: install the SIGINT/SIGTERM handling; default: only when called from the
            main thread (signals can only be received there).

    Returns:
        None, once the tree has stopped cleanly.

    Raises:
        RestartIntensityExceeded: if the root supervisor gives up; ``str()`` names it, and
            ``report()`` adds the child, the restart window and the last traceback.
        TypeError: if ``tree`` is not a :class:`~triactor.Supervisor`.
    """
    if not isinstance(tree, Supervisor):
        raise TypeError(f"triactor.run takes a Supervisor, got {tree!r}")
    if handle_signals is None:
        handle_signals = threading.current_thread() is threading.main_thread()
    trio.run(functools.partial(run_tree, tree, handle_signals=handle_signals))
