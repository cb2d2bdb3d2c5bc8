"""The sender side of one remote target: an ordered, bounded queue of encoded messages.

Every tell and ask from this node to one stream goes through its outbox, in order (FIFO per
sender). While the target is far from its bound and nothing is queued, a message goes straight
into the connection's pipeline; otherwise one task per outbox writes batches with ``XADD``
(pipelined) and learns the stream's length from an ``XLEN`` in the same round trip. The
target's backlog in the cluster is bounded (its ``mailbox_capacity`` times
``Cluster.backlog_factor``): when it is full, the target's
``Overflow`` policy applies here, at the sender, exactly as for a local mailbox.
"""

from __future__ import annotations

import json
import math
from collections import deque
from typing import TYPE_CHECKING, Final, final

import trio
from trio.lowlevel import ParkingLot

from .._errors import MailboxFull
from ..actors import DeadLetterReason
from ..mailbox import Overflow

if TYPE_CHECKING:
    from ._node import Node

__all__ = ["DEFAULT_CAPACITY", "Outbox"]

#: The bound a sender assumes for a name no node has exported yet (the Actor default).
DEFAULT_CAPACITY: Final = 1000
#: The most messages queued on this node for one target before ``BLOCK`` makes senders wait.
_LOCAL_LIMIT: Final = 256
#: The most ``XADD`` commands in one batch.
_BATCH: Final = 512
#: How often a sender reads its target's published bound and policy again.
_RELEARN_SECONDS: Final = 1.0


@final
class Outbox:
    """The queue of messages this node sends to one stream. Internal."""

    __slots__ = (
        "_items",
        "_known",
        "_learned_at",
        "_node",
        "_overflow",
        "_room",
        "_wake",
        "backlog",
        "bound",
        "dropped",
        "high_water",
        "idle",
        "key",
        "name",
        "sent",
    )

    def __init__(self, node: Node, key: str, name: str) -> None:
        self._node = node
        self.key = key
        self.name = name
        self._items: deque[tuple[bytes, object]] = deque()
        self._overflow = Overflow.BLOCK
        self._known = False
        self._learned_at = -math.inf
        self.bound = DEFAULT_CAPACITY * node.cluster.backlog_factor
        #: The stream's length when last seen (entries neither acknowledged nor trimmed yet).
        self.backlog = 0
        self.high_water = 0
        self.sent = 0
        self.dropped = 0
        self._wake = ParkingLot()  # the sender task, waiting for messages
        self._room = ParkingLot()  # tell()s waiting for room under BLOCK
        #: Set while nothing is queued or in flight (what a graceful close waits for).
        self.idle = trio.Event()
        self.idle.set()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def senders_waiting(self) -> int:
        """Tasks blocked in ``tell`` waiting for room."""
        return len(self._room)

    def _remote_full(self) -> bool:
        return self.backlog >= self.bound

    def _queue(self, payload: bytes, message: object) -> None:
        self._items.append((payload, message))
        if self.idle.is_set():
            self.idle = trio.Event()
        if self._wake:
            self._wake.unpark()

    def _dead_letter(self, message: object, reason: DeadLetterReason) -> None:
        self.dropped += 1
        self._node.system.dead_letters._record(self.name, message, reason, f"stream {self.key}")

    def _full_error(self, message: object) -> MailboxFull:
        return MailboxFull(
            f"mailbox of remote actor {self.name!r} is full (about {self.backlog} messages "
            f"in the cluster, bound {self.bound}, Overflow.FAIL); {type(message).__qualname__} "
            "was not sent. Slow the sender down, add hosts, or raise its mailbox_capacity"
        )

    async def send(self, payload: bytes, message: object) -> None:
        """Queue one encoded message, applying the target's overflow policy when it is full.

        Raises:
            MailboxFull: the target is full and its policy is ``Overflow.FAIL``.
        """
        if not self._items and self._known and self.backlog < self.bound >> 1:
            self._send_now(payload)
            return
        if len(self._items) < _LOCAL_LIMIT and not self._remote_full():
            self._queue(payload, message)
            return
        policy = self._overflow
        if policy is Overflow.BLOCK:
            while len(self._items) >= _LOCAL_LIMIT:
                await self._room.park()
            self._queue(payload, message)
        elif not self.try_send(payload, message) and policy is Overflow.FAIL:
            raise self._full_error(message)

    def _send_now(self, payload: bytes) -> None:
        # The fast path: nothing queued ahead of it (so order holds) and the target far from
        # its bound, so the message goes straight to the connection's pipeline. The backlog
        # is then an estimate, corrected by the XLEN of the next batch the sender task writes.
        self._node.cmd.send_nowait("XADD", self.key, "*", "m", payload)
        self.backlog += 1
        self.sent += 1

    def try_send(self, payload: bytes, message: object) -> bool:
        """Queue one encoded message if that needs no waiting. Returns whether it was queued."""
        if not self._items and self._known and self.backlog < self.bound >> 1:
            self._send_now(payload)
            return True
        full = len(self._items) >= _LOCAL_LIMIT or self._remote_full()
        if not full:
            self._queue(payload, message)
            return True
        policy = self._overflow
        if policy is Overflow.DROP_NEWEST:
            self._dead_letter(message, DeadLetterReason.DROPPED_NEWEST)
            return False
        if policy is Overflow.DROP_OLDEST:
            if self._items:
                _, oldest = self._items.popleft()
                self._dead_letter(oldest, DeadLetterReason.DROPPED_OLDEST)
            self._queue(payload, message)
            return True
        if policy is Overflow.BLOCK and len(self._items) < _LOCAL_LIMIT:
            self._queue(payload, message)  # the remote is full, but the local buffer is not
            return True
        return False

    async def learn_policy(self) -> None:
        """Read the bound and overflow policy the target's hosts published.

        Until a host has published them (the name is hosted nowhere yet), the defaults apply
        and they are read again before every batch; afterwards, at most once a second.
        """
        now = trio.current_time()
        if self._known and now - self._learned_at < _RELEARN_SECONDS:
            return
        self._learned_at = now
        raw = await self._node.cmd.execute("HGET", self._node.keys.exports, self.key)
        if not isinstance(raw, bytes):
            return
        try:
            info = json.loads(raw)
            self.bound = max(1, int(info["bound"]))
            self._overflow = Overflow[info["overflow"]]
        except (ValueError, KeyError, TypeError):
            return
        self._known = True

    def learned(self, bound: int, overflow: Overflow) -> None:
        """Take the bound and policy from a host in this very process."""
        self.bound = bound
        self._overflow = overflow
        self._known = True

    async def run(self) -> None:
        """Write queued messages to the stream, in order, until cancelled."""
        cmd = self._node.cmd
        key = self.key
        items = self._items
        await self.learn_policy()
        pause = 0.001
        while True:
            if not items:
                self.idle.set()
                await self._wake.park()
                continue
            room = self.bound - self.backlog
            if room <= 0:
                length = await cmd.execute("XLEN", key)
                self.backlog = int(length)
                if self.backlog >= self.bound:
                    await self.learn_policy()
                    await trio.sleep(pause)
                    pause = min(pause * 2, 0.005)
                continue
            pause = 0.001
            await self.learn_policy()
            room = self.bound - self.backlog
            if room <= 0:
                continue
            count = min(len(items), room, _BATCH)
            for _ in range(count):
                payload, _message = items.popleft()
                cmd.send_nowait("XADD", key, "*", "m", payload)
            self._room.unpark_all()
            length = await cmd.execute("XLEN", key)  # also: the batch reached the server
            self.sent += count
            self.backlog = int(length)
            if self.backlog > self.high_water:
                self.high_water = self.backlog

    def abandon(self) -> int:
        """Dead-letter what is still unsent (the system stopped); returns how many."""
        count = len(self._items)
        while self._items:
            _, message = self._items.popleft()
            self._dead_letter(message, DeadLetterReason.UNSENT)
        self.idle.set()
        return count
