"""Who is asking: the round-robin key pools use when ``acquire`` gets no ``owner``."""

from __future__ import annotations

from contextvars import ContextVar

from trio.lowlevel import current_task

__all__ = ["current_owner", "default_owner"]

#: The round-robin key that ``PriorityPool.acquire`` uses when the caller passes no ``owner``.
#: The actor runtime sets it in each actor's task (to the actor's path), so that every task an
#: actor starts, its fan-out included, shares one turn with its peers. Unset, each Trio task is
#: its own owner.
default_owner: ContextVar[object | None] = ContextVar("triactor_default_owner", default=None)


def current_owner() -> object:
    """The owner of the running code: :data:`default_owner` if set, else the current task."""
    owner = default_owner.get()
    return current_task() if owner is None else owner
