"""What a full mailbox does with one more message."""

from __future__ import annotations

import enum

__all__ = ["Overflow"]


class Overflow(enum.Enum):
    """The policy a bounded mailbox applies when a message arrives and it is full.

    Every message a policy drops goes to the system's dead letters, counted and logged; nothing
    is lost silently.

    Attributes:
        BLOCK: the sender waits until there is room (backpressure). Waiting senders are served
            in arrival order and never overtaken by later senders.
        DROP_NEWEST: the arriving message is dropped.
        DROP_OLDEST: the oldest queued message of the lowest priority is dropped to make room.
        FAIL: the sender gets :class:`~triactor.MailboxFull` at once.
    """

    BLOCK = "block"
    DROP_NEWEST = "drop_newest"
    DROP_OLDEST = "drop_oldest"
    FAIL = "fail"
