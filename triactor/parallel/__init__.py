"""CPU-bound work on other cores: ``run_in_process`` runs a function in a worker process."""

from ._process import run_in_process

__all__ = ["run_in_process"]
