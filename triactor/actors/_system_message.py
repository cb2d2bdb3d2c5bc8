"""The marker base class of the framework's own messages (supervision signals and requests)."""

from __future__ import annotations

__all__ = ["SystemMessage"]


class SystemMessage:
    """A message the framework sends to its own actors (supervisors), never a user's.

    System messages are exempt from the serializability check and, when an actor crashes while
    handling one, are not counted as dead letters: they were never user traffic.
    """

    __slots__ = ()
