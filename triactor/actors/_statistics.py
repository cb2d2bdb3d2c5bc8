"""Per-actor statistics snapshots."""

from __future__ import annotations

from typing import TYPE_CHECKING, final

import attrs

from ..mailbox import MailboxStatistics

if TYPE_CHECKING:
    from ._cell import ActorCell

__all__ = ["ActorStatistics", "actor_statistics"]


@final
@attrs.frozen
class ActorStatistics:
    """A snapshot of one actor, returned by ``ref.statistics()``.

    Attributes:
        path: the actor's path.
        state: its :class:`~triactor.ActorState` value (``"idle"``, ``"processing"``...).
        processed: messages handled successfully since it was spawned (all incarnations).
        failures: handler exceptions since it was spawned (crashes and ``resume_on`` errors).
        restarts: times a supervisor restarted it.
        current_message_type: the type name of the message being handled now, or None.
        mailbox: the mailbox's statistics.
    """

    path: str
    state: str
    processed: int
    failures: int
    restarts: int
    current_message_type: str | None
    mailbox: MailboxStatistics


def actor_statistics(cell: ActorCell) -> ActorStatistics:
    """Build the :class:`ActorStatistics` of ``cell``."""
    current = cell.current
    return ActorStatistics(
        path=cell.path,
        state=cell.activity.value,
        processed=cell.processed,
        failures=cell.failures,
        restarts=cell.restarts,
        current_message_type=None if current is None else type(current).__qualname__,
        mailbox=cell.mailbox.statistics(),
    )
