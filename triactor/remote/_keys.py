"""The names of the Redis keys a cluster uses (all start with ``triactor:<cluster>:``)."""

from __future__ import annotations

from typing import Final, final

__all__ = ["GROUP", "RELEASED", "Keys"]

#: The one consumer group on every mailbox stream.
GROUP: Final = "triactor"
#: The consumer that holds messages a node handed back undelivered: it has no heartbeat, so
#: live hosts claim from it at their next sweep.
RELEASED: Final = "released"


@final
class Keys:
    """Key names for one cluster."""

    __slots__ = ("prefix",)

    def __init__(self, cluster: str) -> None:
        self.prefix = f"triactor:{cluster}"

    def mailbox(self, name: str) -> str:
        """The stream feeding every host of the exported name ``name``."""
        return f"{self.prefix}:mailbox:{name}"

    def private(self, node: str, path: str) -> str:
        """The stream feeding one node's unexported actor, whose ref travelled in a message."""
        return f"{self.prefix}:node:{node}:actor:{path}"

    def topic(self, topic: str) -> str:
        """The stream of a pub-sub topic (one consumer group per subscribing node)."""
        return f"{self.prefix}:topic:{topic}"

    def replies(self, node: str) -> str:
        """The stream of replies to the asks ``node`` made."""
        return f"{self.prefix}:node:{node}:replies"

    def heartbeat(self, node: str) -> str:
        """The key whose presence says ``node`` is alive (it expires ``claim_after`` later)."""
        return f"{self.prefix}:heartbeat:{node}"

    @property
    def dead_letters(self) -> str:
        """The stream of poison and undecodable messages, with their reasons."""
        return f"{self.prefix}:dead-letters"

    @property
    def exports(self) -> str:
        """A hash: mailbox stream key -> the bound and overflow policy senders apply."""
        return f"{self.prefix}:exports"

    @property
    def nodes(self) -> str:
        """A hash: node name -> what it hosts (for ``triactor status``)."""
        return f"{self.prefix}:nodes"
