"""Supervision trees with Erlang/OTP semantics: specs, strategies, restart intensity, backoff."""

from ._spec import Backoff, ChildSpec, Restart, Strategy, Supervisor
from ._supervisor import ChildCounts, ChildInfo, ChildState

__all__ = [
    "Backoff",
    "ChildCounts",
    "ChildInfo",
    "ChildSpec",
    "ChildState",
    "Restart",
    "Strategy",
    "Supervisor",
]
