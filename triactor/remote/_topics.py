"""Topics across nodes: every node with local subscribers reads the topic's stream.

``system.publish(topic, msg)`` on a node of a cluster delivers to that node's own subscribers
at once (the in-process rules: each subscriber's overflow policy, a bounded wait for full
``BLOCK`` mailboxes) and appends the message to the topic's stream. Every other node that has
subscribers to the topic reads that stream through a consumer group of its own (one group per
subscribing node, starting at its first subscription) and hands each message to its local
subscribers by the same rules. So each subscriber gets each message once, in publish order per
publisher. The stream keeps the last ``TOPIC_KEPT`` messages: a node further behind than that
misses the oldest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, final

import trio

from ..actors import DeadLetterReason
from ._codec import TELL, Undecodable
from ._feeder import parse_read, payload_of
from ._redis import RedisConnectionLost, RedisError, open_connection, unblock_until

if TYPE_CHECKING:
    from ._node import Node

__all__ = ["TOPIC_KEPT", "TopicReader", "topic_payload"]

TOPIC_KEPT: Final = 10_000
_BLOCK_MS: Final = 5000


@final
class TopicReader:
    """Reads one topic's stream for this node's subscribers. Internal."""

    def __init__(self, node: Node, topic: str) -> None:
        self.node = node
        self.topic = topic
        self.key = node.keys.topic(topic)
        self.group = node.node
        self.received = 0
        self._stopping = False
        self._conn: Any = None
        self._done = trio.Event()

    def __repr__(self) -> str:
        return f"<TopicReader {self.key}, {self.received} received>"

    async def join(self) -> None:
        """Create this node's group on the topic, from now on (idempotent)."""
        try:
            await self.node.cmd.execute("XGROUP", "CREATE", self.key, self.group, "$", "MKSTREAM")
        except RedisError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def run(self) -> None:
        """Read and fan out until stopped."""
        try:
            async with open_connection(
                self.node.address,
                name=f"triactor:{self.node.node}:topic",
                outage_log=self.node.outage_log,
            ) as conn:
                self._conn = conn
                while not self._stopping:
                    try:
                        reply = await conn.execute_blocking(
                            "XREADGROUP",
                            "GROUP",
                            self.group,
                            self.node.node,
                            "COUNT",
                            100,
                            "BLOCK",
                            _BLOCK_MS,
                            "STREAMS",
                            self.key,
                            ">",
                            unblock_via=self.node.cmd,
                        )
                    except RedisConnectionLost:
                        continue  # the group remembers what it delivered; read on
                    except RedisError as exc:
                        if "NOGROUP" in str(exc):
                            await self.join()
                            continue
                        raise
                    await self._fan_out(parse_read(reply))
        finally:
            self._conn = None
            self._done.set()

    async def _fan_out(self, entries: list[tuple[bytes, list[bytes] | None]]) -> None:
        node = self.node
        for entry_id, flat in entries:
            node.cmd.send_nowait("XACK", self.key, self.group, entry_id)
            if flat is None:
                continue
            self.received += 1
            try:
                envelope = node.codec.decode(payload_of(flat))
            except Undecodable as exc:
                node.system.dead_letters._record(
                    f"topic {self.topic}", payload_of(flat), DeadLetterReason.UNDECODABLE, str(exc)
                )
                continue
            if envelope.kind is not TELL or envelope.sender == node.node:
                continue  # this node's own publish was delivered here already
            await node.system._publish_locally(self.topic, envelope.message, envelope.priority)

    async def stop(self) -> None:
        """Stop reading (a blocked read is unblocked) and leave the topic."""
        self._stopping = True
        await unblock_until(self._done, lambda: self._conn, via=self.node.cmd)
        self.node.cmd.send_nowait("XGROUP", "DESTROY", self.key, self.group)


def topic_payload(node: Node, message: object, priority: int) -> bytes:
    """The stream entry of one published message."""
    return node.codec.encode(TELL, message, priority=priority)
