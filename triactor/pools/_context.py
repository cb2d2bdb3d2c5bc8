"""The default priority class of the running actor, read by pools when no priority is given."""

from __future__ import annotations

from contextvars import ContextVar

#: The priority class name that ``PriorityPool.acquire`` uses when the caller passes none.
#: The actor runtime sets it in each actor's task from the actor's ``priority`` attribute, so
#: handlers acquire at their actor's priority without passing it.
default_priority: ContextVar[str | None] = ContextVar("triactor_default_priority", default=None)
