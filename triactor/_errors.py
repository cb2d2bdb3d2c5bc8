"""The exceptions triactor raises.

Every error the framework raises on purpose is a subclass of :class:`ActorError`, so that
``except triactor.ActorError`` catches all of them and nothing else. Errors raised by user code
inside handlers are never wrapped: the asker gets the user's own exception back.
"""

from __future__ import annotations

__all__ = [
    "ActorError",
    "ActorNotFound",
    "ActorStopped",
    "MailboxFull",
    "NoHandler",
    "PoolOverloaded",
    "RestartIntensityExceeded",
]


class ActorError(Exception):
    """Base class of every error that triactor itself raises."""


class MailboxFull(ActorError):
    """A message could not be enqueued because the target's mailbox is full.

    Raised by ``tell``/``ask`` when the mailbox uses ``Overflow.FAIL``, and delivered to an asker
    whose request was dropped by ``Overflow.DROP_NEWEST`` or ``Overflow.DROP_OLDEST``.
    """


class ActorStopped(ActorError):
    """The target actor has stopped for good, so it cannot take the message.

    Raised by ``ask`` (at once, without waiting), by ``spawn`` on a system that is shutting down,
    and delivered to askers whose requests were still queued when the actor stopped.
    """


class ActorNotFound(ActorError, LookupError):
    """``ActorSystem.lookup`` found no live actor with that name or path."""


class NoHandler(ActorError, TypeError):
    """The actor has no handler for the type of the message it was sent.

    The message text names the actor, the message type and the types the actor does handle.
    """


class RestartIntensityExceeded(ActorError):
    """A supervisor's children crashed more often than its ``max_restarts`` within ``within``.

    The supervisor stopped all of its children in reverse order before raising this. Its parent
    supervisor treats it as a crash of that child; at the root it ends ``triactor.run``.
    """


class PoolOverloaded(ActorError):
    """A pool refused a request because its priority class already has ``max_waiting`` waiters."""
