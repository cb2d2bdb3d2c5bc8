"""The exceptions triactor raises.

Every error the framework raises on purpose is a subclass of :class:`ActorError`, so that
``except triactor.ActorError`` catches all of them and nothing else. Errors raised by user code
inside handlers are never wrapped: the asker gets the user's own exception back.
"""

from __future__ import annotations

from ._safe import safe_repr

__all__ = [
    "ActorError",
    "AskCycleError",
    "ActorNotFound",
    "ActorStopped",
    "MailboxFull",
    "NoHandler",
    "PoolOverloaded",
    "RemoteError",
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
    supervisor treats it as a crash of that child; at the root it ends ``triactor.run``. The
    last child exception is the ``__cause__``, so its traceback prints with this error.

    Attributes:
        supervisor: the path of the supervisor that gave up.
        child: the path of the child whose exit spent the budget.
        restarts: restarts counted in the window, this one included.
        max_restarts: the supervisor's restart intensity: the most restarts allowed within
            ``within`` seconds.
        within: the length of that window, in seconds.
        last_error: the child's last exception (None if it exited normally).
    """

    def __init__(
        self,
        message: str,
        *,
        supervisor: str = "",
        child: str = "",
        restarts: int = 0,
        max_restarts: int = 0,
        within: float = 0.0,
        last_error: BaseException | None = None,
    ) -> None:
        super().__init__(message)
        self.supervisor = supervisor
        self.child = child
        self.restarts = restarts
        self.max_restarts = max_restarts
        self.within = within
        self.last_error = last_error

    def report(self) -> str:
        """A multi-line report for a person: who gave up, why, and the last traceback.

        The traceback is compact (triactor's frames folded) unless
        ``triactor.configure_logging(full_tracebacks=True)``; it never shows variable values.
        """
        from ._logging import format_exception

        lines = [
            f"Supervisor {self.supervisor} gave up.",
            f"  child:     {self.child}",
            f"  restarts:  {self.restarts} within {self.within:g} s "
            f"(max_restarts={self.max_restarts})",
        ]
        if self.last_error is None:
            lines.append("  last exit: normal (a permanent child kept stopping)")
        else:
            lines.append(f"  last error: {safe_repr(self.last_error)}")
            lines.append("")
            lines.append(format_exception(self.last_error))
        lines.append("What to do: fix the cause of the crashes above, or raise the supervisor's")
        lines.append("max_restarts/within if such crashes are expected.")
        return "\n".join(lines)


class PoolOverloaded(ActorError):
    """A pool refused a request because its priority class already has ``max_waiting`` waiters."""


class AskCycleError(ActorError):
    """An ``ask`` would close a cycle of actors waiting on each other: a certain deadlock.

    An actor takes one message at a time (or ``max_concurrency`` at once). If A, handling a
    message, asks B while B, handling another, asks A, neither can ever answer: each waits for
    the other. triactor refuses the ask that would close such a cycle, at once, instead of
    letting it hang until a timeout. It sees the cycle two ways: through the chain of nested
    asks that travels with every request, and on the graph of who waits on whom right now,
    which also catches independent asks, actors with every ``max_concurrency`` slot waiting
    (an actor asking itself deeper than its slots), and starts (a child's ``on_start`` asking
    back the actor whose ``spawn`` or ``start_child`` waits for it).

    Break the cycle: reply instead of asking back, use ``tell``, or give an actor on the cycle
    more ``max_concurrency`` than the nesting needs. A child's ``on_start`` should not ask the
    actor that starts it (send it a ``tell``, or do the work in the first message instead).

    Attributes:
        cycle: the actor paths around the cycle, starting and ending with the same actor.
    """

    def __init__(self, cycle: tuple[str, ...], message_type: str) -> None:
        super().__init__(
            f"ask {message_type} would deadlock: {' -> '.join(cycle)} is a cycle of actors "
            "waiting on each other (every handler slot of each is busy waiting). Reply instead "
            "of asking back, use tell, or give an actor on the cycle more max_concurrency than "
            "the nesting needs"
        )
        self.cycle = cycle


class RemoteError(ActorError):
    """A handler on another node raised: the asker's side of that exception.

    The remote exception's class may not exist here, so it travels as text: its type, message
    and formatted traceback. The message of this error reads like the original, followed by
    where it was raised.

    Attributes:
        remote_type: the exception's qualified type name, e.g. ``"builtins.ValueError"``.
        actor: the path of the actor that raised it, on its node.
        node: the node the actor runs on.
        remote_traceback: the traceback formatted on that node.
    """

    def __init__(
        self, message: str, *, remote_type: str, actor: str, node: str, remote_traceback: str
    ) -> None:
        super().__init__(f"{remote_type}: {message} (raised in actor {actor!r} on node {node!r})")
        self.remote_type = remote_type
        self.actor = actor
        self.node = node
        self.remote_traceback = remote_traceback
