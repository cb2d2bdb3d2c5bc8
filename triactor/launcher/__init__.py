"""Running triactor programs: the ``triactor`` command, ``triactor.run``, and embedding.

Three ways to run a supervision tree:

- ``triactor run module:attr`` (:func:`main`), or ``triactor.run(tree)`` from a script;
- inside a Trio program: ``async with open_actor_system() as system: await system.spawn(tree)``,
  or :func:`run_tree` for the signal handling and shutdown deadline of ``triactor.run``;
- inside a synchronous program: ``with start_in_thread(tree) as portal:``.
"""

from ._cli import main
from ._loading import TargetError, build_tree
from ._portal import ActorPortal, start_in_thread
from ._run import Monitor, RunningTree, RunResult, run, run_tree
from ._status import StatusLine, StatusSnapshot
from ._tree_view import render_tree

__all__ = [
    "ActorPortal",
    "Monitor",
    "RunResult",
    "RunningTree",
    "StatusLine",
    "StatusSnapshot",
    "TargetError",
    "build_tree",
    "main",
    "render_tree",
    "run",
    "run_tree",
    "start_in_thread",
]
