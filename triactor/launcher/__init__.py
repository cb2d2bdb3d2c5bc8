"""Running triactor programs: ``triactor.run`` for supervision trees."""

from ._run import run, run_tree

__all__ = ["run", "run_tree"]
