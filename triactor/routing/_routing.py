"""``Routing``: how a router chooses the routee for each message."""

from __future__ import annotations

import enum

__all__ = ["Routing"]


class Routing(enum.Enum):
    """How a :class:`~triactor.Router` chooses the routee that gets each message.

    Attributes:
        ROUND_ROBIN: the routees in turn, exactly: message n goes to routee n mod size. A
            full routee makes the sender wait for it (under ``Overflow.BLOCK``) even if another
            has room; use it when messages cost about the same.
        LEAST_BUSY: the routee with the fewest queued messages (counting senders waiting for
            room), an idle one before a busy one on a tie, and in turn among equals. A full
            routee is never chosen while another has room. Use it when messages cost
            different amounts of time.
    """

    ROUND_ROBIN = "round_robin"
    LEAST_BUSY = "least_busy"
