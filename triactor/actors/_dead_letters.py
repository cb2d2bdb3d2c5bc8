"""Dead letters: every message the system could not deliver, counted and kept for inspection."""

from __future__ import annotations

import enum
from collections import Counter, deque
from collections.abc import Iterator
from typing import final

import attrs

from .._logging import enabled, logger, message_contents
from .._safe import safe_repr

__all__ = ["DeadLetter", "DeadLetterReason", "DeadLetters"]


class DeadLetterReason(enum.Enum):
    """Why a message became a dead letter.

    Attributes:
        DROPPED_NEWEST: the target's full mailbox (``Overflow.DROP_NEWEST``) refused it.
        DROPPED_OLDEST: the target's full mailbox (``Overflow.DROP_OLDEST``) evicted it.
        ACTOR_STOPPED: the target had stopped, or stopped before handling it.
        NO_HANDLER: the target has no handler for the message's type.
        CRASHED: the target crashed while handling it.
        HANDLER_ERROR: its handler raised an exception of the actor's ``resume_on`` types and
            nobody was asking (a ``tell``); the actor went on. ``error`` is the exception.
        EXPIRED: an ``ask`` whose caller had stopped waiting (timeout or cancellation) before
            the actor got to it; it was not handled.
        LATE_REPLY: a reply to an ``ask`` whose caller had stopped waiting (timeout or
            cancellation); ``message`` is the reply value or exception.
        UNDECODABLE: a message from the cluster that could not be decoded (malformed, or of
            a type this node does not allow); it went to the cluster's dead-letter stream.
        POISON: a message from the cluster delivered ``max_deliveries`` times without being
            acknowledged (it kept killing its hosts); it went to the dead-letter stream.
        UNSENT: a message for another node still unsent when the system stopped (the
            cluster's server stayed unreachable past the shutdown deadline).
        PUBLISH_DROPPED: a subscriber's copy of a published message that its full mailbox
            could not take (``Overflow.FAIL``, or ``BLOCK`` past the publish timeout).
    """

    DROPPED_NEWEST = "dropped: mailbox full (DROP_NEWEST)"
    DROPPED_OLDEST = "dropped: mailbox full (DROP_OLDEST)"
    ACTOR_STOPPED = "actor stopped"
    NO_HANDLER = "no handler"
    CRASHED = "actor crashed while handling it"
    HANDLER_ERROR = "handler raised; the actor resumed"
    EXPIRED = "expired: the asker stopped waiting"
    LATE_REPLY = "late reply"
    UNDECODABLE = "undecodable message from the cluster"
    POISON = "poison: delivered max_deliveries times without an acknowledgement"
    UNSENT = "unsent: the cluster was unreachable when the system stopped"
    PUBLISH_DROPPED = "dropped by publish: subscriber's mailbox full"


_QUIET, _LOUD = ("DEBUG", 10), ("WARNING", 30)  # loguru's names; the numbers are logging's too


@final
@attrs.frozen
class DeadLetter:
    """One undelivered message.

    Attributes:
        target: the path of the actor the message was for (for a late reply: the actor that
            replied).
        message: the message itself (for a late reply: the reply value or exception).
        reason: why it was not delivered.
        detail: a human-readable explanation (the exception for a crash, the wait for a late
            reply); may be empty.
        error: the exception the handler raised, for ``HANDLER_ERROR``; otherwise None.
    """

    target: str
    message: object
    reason: DeadLetterReason
    detail: str = ""
    error: BaseException | None = None


@final
class DeadLetters:
    """The system's record of undelivered messages: a total count and the most recent entries.

    ``count`` is exact since the system started; iterating yields the last ``keep`` entries,
    oldest first. Retention is by count, not size: each entry keeps the message object itself
    (to inspect or resend), so the entries hold up to ``keep`` times the message size; pass a
    smaller ``dead_letters_kept`` to ``open_actor_system`` (0 keeps counts only) when messages
    are large. Each entry is logged with the actor, the message type and the reason (the
    message's contents only with ``triactor.configure_logging(message_contents=True)``): at
    DEBUG for drops by an overflow policy the actor chose and for the message of a crash (the
    crash's own record names it), at WARNING otherwise. A record nobody would see is not made.

    Users get this object as ``system.dead_letters``; they never construct it.
    """

    __slots__ = ("_by_reason", "_count", "_recent")

    def __init__(self, keep: int = 1000) -> None:
        if keep < 0:
            raise ValueError(f"dead letters keep must be >= 0, got {keep}")
        self._recent: deque[DeadLetter] = deque(maxlen=keep)
        self._count = 0
        self._by_reason: Counter[DeadLetterReason] = Counter()

    @property
    def count(self) -> int:
        """The number of dead letters since the system started."""
        return self._count

    def count_by_reason(self) -> dict[DeadLetterReason, int]:
        """Return how many dead letters each reason produced since the system started."""
        return dict(self._by_reason)

    def __iter__(self) -> Iterator[DeadLetter]:
        return iter(list(self._recent))

    def __len__(self) -> int:
        return len(self._recent)

    def __repr__(self) -> str:
        return f"<DeadLetters count={self._count}, {len(self._recent)} kept>"

    def _record(
        self,
        target: str,
        message: object,
        reason: DeadLetterReason,
        detail: str = "",
        error: BaseException | None = None,
    ) -> None:
        """Count and keep one undelivered message, and log it (with ``error``'s traceback)."""
        self._count += 1
        self._by_reason[reason] += 1
        self._recent.append(DeadLetter(target, message, reason, detail, error))
        # At DEBUG: drops the actor's own overflow policy chose, and the message a crash was
        # handling (the crash is logged on its own, naming it).
        level, number = (
            _QUIET
            if reason is DeadLetterReason.DROPPED_NEWEST
            or reason is DeadLetterReason.DROPPED_OLDEST
            or reason is DeadLetterReason.CRASHED
            else _LOUD
        )
        if not enabled(__name__, number):
            return  # overflow drops may come by the thousand: no record nobody would see
        logger.bind(actor=target).opt(exception=error).log(
            level,
            "dead letter: {} for {} ({}){}",
            safe_repr(message) if message_contents() else type(message).__qualname__,
            target,
            reason.value,
            f": {detail}" if detail else "",
        )
