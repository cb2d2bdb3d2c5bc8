"""The node: one actor system's membership of a cluster (the transport the system calls).

It owns the Redis connections, the heartbeat, the reply stream of this node's asks, the
feeders of exported actors, the outboxes of remote targets and the batched acknowledgements.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Final, final

import outcome
import trio
from trio.lowlevel import ParkingLot

from .._errors import ActorError, ActorStopped, AskCycleError, MailboxFull, NoHandler, RemoteError
from .._logging import logger
from ..actors import Actor, ActorRef, DeadLetterReason
from ..actors._ref import LocalActorRef
from ..actors._request import Request
from ..supervision._supervisor import SupervisorActor
from ._cluster import Cluster
from ._codec import FAILURE, REPLY, Codec, Envelope, Undecodable
from ._feeder import Feeder, format_traceback, parse_entries, parse_read, payload_of
from ._keys import GROUP, RELEASED, Keys
from ._outbox import Outbox
from ._redis import (
    OutageLog,
    RedisAddress,
    RedisConnection,
    RedisConnectionLost,
    RedisError,
    open_connection,
    unblock_until,
)
from ._ref import RemoteActorRef
from ._statistics import ExportStatistics
from ._topics import TOPIC_KEPT, TopicReader, topic_payload

if TYPE_CHECKING:
    from ..actors import ActorSystem
    from ..actors._cell import ActorCell

__all__ = ["Node", "open_node"]

_REPLY_BLOCK_MS: Final = 5000
_REPLIES_KEPT: Final = 100_000
_DEAD_LETTERS_KEPT: Final = 10_000
_CLOSE_FLUSH_SECONDS: Final = 5.0

# Errors of triactor's own that cross the wire as themselves rather than as RemoteError.
_OWN_ERRORS: Final[dict[str, type[ActorError]]] = {
    f"{cls.__module__}.{cls.__qualname__}": cls
    for cls in (NoHandler, ActorStopped, MailboxFull, AskCycleError)
}


@final
class Node:
    """This process in the cluster: implements the system's transport seam. Internal."""

    def __init__(
        self,
        cluster: Cluster,
        system: ActorSystem,
        address: RedisAddress,
        cmd: RedisConnection,
        nursery: trio.Nursery,
    ) -> None:
        self.cluster = cluster
        self.system = system
        self.address = address
        self.cmd = cmd
        self.node = cluster.node
        self.keys = Keys(cluster.name)
        self.reply_key = self.keys.replies(self.node)
        self.claim_after_ms = max(1, int(cluster.claim_after * 1000))
        self.sweep_interval = min(1.0, cluster.claim_after / 3)
        self.codec = Codec(self.node, self.ref_to_wire, self.ref_from_wire)
        self.codec.allow(*cluster.types)
        self.closed = False
        self._nursery = nursery
        self._feeders: dict[str, Feeder] = {}
        self._topic_readers: dict[str, TopicReader] = {}
        self._private: dict[ActorCell, str] = {}
        self._outboxes: dict[str, Outbox] = {}
        self._refs: dict[str, RemoteActorRef] = {}
        self._replies: dict[int, tuple[Request, str]] = {}
        self._next_correlation = 1
        self._acks: dict[str, list[bytes]] = {}
        self._acks_ready = ParkingLot()
        self._export_stats: dict[str, ExportStatistics] = {}
        self._replies_conn: RedisConnection | None = None
        #: Shared by this node's connections: an outage of the server is logged once.
        self.outage_log = OutageLog()
        self._replies_stopping = False
        self._replies_done = trio.Event()

    def __repr__(self) -> str:
        return (
            f"<Node {self.node} of cluster {self.cluster.name!r} at {self.address}, "
            f"{len(self._feeders)} feeding, {len(self._outboxes)} sending to, "
            f"{len(self._replies)} asks waiting>"
        )

    # -- the transport seam -----------------------------------------------------------------

    def export(self, cell: ActorCell) -> None:
        """Feed ``cell`` from the stream of its name (the name is the cluster-wide address)."""
        self._feed(cell, self.keys.mailbox(cell.name))

    def _feed(self, cell: ActorCell, key: str) -> None:
        if key in self._feeders:
            raise ValueError(
                f"actor {cell.path!r}: the name {cell.name!r} is already exported by "
                f"{self._feeders[key].cell.path!r} on this node; export each name once per "
                "node (several nodes may host the same name)"
            )
        feeder = Feeder(self, cell, key)
        self._feeders[key] = feeder
        self.codec.allow_actor_class(cell.actor_class)
        if not issubclass(cell.actor_class, SupervisorActor):
            # Known now for a plain actor: senders learn it before the first message. A
            # router's routees are known once it runs; its feeder publishes them then.
            self.publish_policy(feeder)

        def forget(_: ActorCell) -> None:
            if self._feeders.get(key) is feeder:
                del self._feeders[key]
            if not self.closed:
                self._nursery.start_soon(feeder.stop)

        cell.add_watcher(forget)
        if not self.closed:
            self._nursery.start_soon(feeder.run, name=f"triactor feeder {key}")

    def publish_policy(self, feeder: Feeder) -> None:
        """Tell senders the bound and overflow policy of what ``feeder`` feeds.

        Called when the feeder starts: a router's routees are known by then.
        """
        targets = feeder.targets()
        overflow = targets[0].mailbox.overflow
        bound = feeder.capacity() * self.cluster.backlog_factor
        for cell in targets:  # a router's routees run the actor class that handles
            self.codec.allow_actor_class(cell.actor_class)
        info = json.dumps(
            {
                "bound": bound,
                "overflow": overflow.name,
                "actor": targets[0].actor_class.__qualname__,
            }
        )
        self.cmd.send_nowait("HSET", self.keys.exports, feeder.key, info)
        outbox = self._outboxes.get(feeder.key)
        if outbox is not None:  # this node sends to the name too: it knows the policy now
            outbox.learned(bound, overflow)

    def join_topic(self, topic: str) -> None:
        """Read ``topic``'s stream for this node's subscribers (from now on; once per topic)."""
        if topic in self._topic_readers or self.closed:
            return
        reader = TopicReader(self, topic)
        self._topic_readers[topic] = reader

        async def join_then_read() -> None:
            await reader.join()
            await reader.run()

        self._nursery.start_soon(join_then_read, name=f"triactor topic {topic}")

    async def publish(self, topic: str, message: object, priority: int) -> None:
        """Append a published message to ``topic``'s stream, for the other nodes."""
        payload = topic_payload(self, message, priority)
        await trio.lowlevel.checkpoint_if_cancelled()
        self.cmd.send_nowait(
            "XADD", self.keys.topic(topic), "MAXLEN", "~", TOPIC_KEPT, "*", "m", payload
        )

    def remote_ref(self, name: str, actor_class: type[Actor] | None = None) -> ActorRef:
        """A ref to the exported name ``name``."""
        if actor_class is not None:
            self.codec.allow_actor_class(actor_class)
        return self._ref_to_key(self.keys.mailbox(name), name)

    def _ref_to_key(self, key: str, name: str) -> RemoteActorRef:
        ref = self._refs.get(key)
        if ref is None:
            outbox = self._outboxes.get(key)
            if outbox is None:
                outbox = Outbox(self, key, name)
                # Started before it is registered: from a foreign thread this raises
                # RuntimeError and leaves nothing half-made behind.
                self._nursery.start_soon(outbox.run, name=f"triactor outbox {key}")
                self._outboxes[key] = outbox
            ref = self._refs[key] = RemoteActorRef(self, name, outbox)
        return ref

    def learn_actor_class(self, actor_class: type[Actor]) -> None:
        """Allow the types ``actor_class``'s handlers take and return."""
        self.codec.allow_actor_class(actor_class)

    async def stop_feeding(self) -> None:
        """Stop every feeder and topic reader (a graceful shutdown begins)."""
        with trio.move_on_after(_CLOSE_FLUSH_SECONDS):
            async with trio.open_nursery() as nursery:
                for feeder in list(self._feeders.values()):
                    nursery.start_soon(feeder.stop)
                for reader in list(self._topic_readers.values()):
                    nursery.start_soon(reader.stop)

    async def close(self) -> None:
        """Send what is queued, acknowledge what was handled, and leave the cluster."""
        if self.closed:
            return
        self.closed = True
        with trio.move_on_after(_CLOSE_FLUSH_SECONDS):
            for outbox in list(self._outboxes.values()):
                await outbox.idle.wait()
        unsent = sum(outbox.abandon() for outbox in self._outboxes.values())
        if unsent:
            logger.warning(
                "{} messages for other nodes were still unsent when the system stopped (the "
                "cluster at {} was unreachable); they are in dead letters",
                unsent,
                self.address,
            )
        for feeder in list(self._feeders.values()):
            feeder.cancel()
        self._flush_acks_now()
        with trio.move_on_after(_CLOSE_FLUSH_SECONDS):
            await self.cmd.execute_many(
                [
                    ["DEL", self.keys.heartbeat(self.node)],
                    ["HDEL", self.keys.nodes, self.node],
                    ["DEL", self.reply_key],
                ]
            )

    def statistics(self) -> list[ExportStatistics]:
        """The cluster's view of each name hosted here (refreshed with the heartbeat)."""
        stats = []
        for key, feeder in self._feeders.items():
            cached = self._export_stats.get(key)
            stats.append(
                ExportStatistics(
                    name=feeder.cell.name,
                    stream=key,
                    length=cached.length if cached else 0,
                    pending=cached.pending if cached else len(feeder.in_flight),
                    redelivered=feeder.redelivered,
                    received=feeder.received,
                    hosts=cached.hosts if cached else (self.node,),
                )
            )
        return stats

    # -- refs on the wire -------------------------------------------------------------------

    def ref_to_wire(self, ref: ActorRef) -> list[str]:
        """How a ref travels: by exported name, or as this node's private stream of a cell."""
        if isinstance(ref, RemoteActorRef):
            return ["k", ref.key, ref.name]
        if isinstance(ref, LocalActorRef):
            cell = ref._cell
            exported = self.keys.mailbox(cell.name)
            feeder = self._feeders.get(exported)
            if feeder is not None and feeder.cell is cell:
                return ["k", exported, cell.name]
            private = self._private.get(cell)
            if private is None:
                private = self._private[cell] = self.keys.private(self.node, cell.path)
                self._feed(cell, private)
            key = private
            return ["k", key, cell.name, self.node, cell.path]
        raise TypeError(f"cannot carry {ref!r} to another node")

    def ref_from_wire(self, data: Any) -> ActorRef:
        """A working ref from what :meth:`ref_to_wire` made (on any node)."""
        if not (
            isinstance(data, list)
            and len(data) in (3, 5)
            and data[0] == "k"
            and all(isinstance(item, str) for item in data)
        ):
            raise TypeError("not a carried actor ref")
        prefix = self.keys.prefix + ":"
        if not data[1].startswith(prefix):
            raise TypeError("a carried ref from another cluster")
        if len(data) == 5 and data[3] == self.node:
            try:
                return self.system.lookup(data[4])
            except LookupError:
                pass  # stopped since: the stream keeps what is sent, as for any remote name
        return self._ref_to_key(data[1], data[2])

    def qualify_chain(self, chain: tuple[str, ...]) -> tuple[str, ...]:
        """Make an ask chain's local paths cluster-wide (``path@node``)."""
        if not chain:
            return chain
        node = self.node
        return tuple(item if "@" in item else f"{item}@{node}" for item in chain)

    def local_chain(self, chain: tuple[str, ...]) -> tuple[str, ...]:
        """Turn this node's entries of a cluster-wide chain back into local paths."""
        if not chain:
            return chain
        suffix = f"@{self.node}"
        return tuple(item[: -len(suffix)] if item.endswith(suffix) else item for item in chain)

    # -- asks -------------------------------------------------------------------------------

    def new_reply_slot(self, message: object, target: str) -> tuple[int, Request]:
        """Register a slot for the reply to an ask; returns its correlation id and the slot."""
        correlation = self._next_correlation
        self._next_correlation += 1
        request = Request(message, self)
        self._replies[correlation] = (request, target)
        return correlation, request

    def forget_reply_slot(self, correlation: int, request: Request) -> None:
        """The asker stopped waiting: a reply that comes later is a late dead letter."""
        entry = self._replies.get(correlation)
        if entry is not None and entry[0] is request:
            del self._replies[correlation]

    def late_reply(self, request: Request, result: outcome.Outcome[Any]) -> None:
        """Record a reply whose asker stopped waiting (the LateReplySink protocol)."""
        reply = _unwrap_outcome(result)
        self.system.dead_letters._record(
            "cluster",
            reply,
            DeadLetterReason.LATE_REPLY,
            f"reply to {type(request.message).__qualname__} after the asker stopped waiting",
        )

    def send_reply(self, envelope: Envelope, result: outcome.Outcome[Any], actor: str) -> None:
        """Send the outcome of a remote ask back to the asker's reply stream."""
        if isinstance(result, outcome.Value):
            try:
                payload = self.codec.encode(REPLY, result.value, correlation=envelope.correlation)
            except TypeError as exc:
                payload = self.codec.encode_failure(
                    exc,
                    actor=actor,
                    correlation=envelope.correlation,
                    traceback_text=format_traceback(exc),
                )
        else:
            assert isinstance(result, outcome.Error)
            error = result.error
            payload = self.codec.encode_failure(
                error,
                actor=actor,
                correlation=envelope.correlation,
                traceback_text=format_traceback(error),
            )
        self.cmd.send_nowait(
            "XADD", envelope.reply_to, "MAXLEN", "~", _REPLIES_KEPT, "*", "m", payload
        )

    def _take_reply(self, envelope: Envelope) -> None:
        entry = self._replies.pop(envelope.correlation, None)
        if envelope.kind is FAILURE:
            result: outcome.Outcome[Any] = outcome.Error(_remote_error(envelope.message))
        else:
            result = outcome.Value(envelope.message)
        if entry is None:
            reply = _unwrap_outcome(result)
            self.system.dead_letters._record(
                "cluster",
                reply,
                DeadLetterReason.LATE_REPLY,
                f"reply from node {envelope.sender} after the asker stopped waiting",
            )
            return
        entry[0].complete(result)

    def _fail_reply(self, error: Undecodable) -> None:
        entry = self._replies.pop(error.correlation, None) if error.correlation else None
        if entry is not None:
            request, target = entry
            request.complete(
                outcome.Error(
                    ActorError(
                        f"the reply of remote actor {target!r} to "
                        f"{type(request.message).__qualname__} could not be decoded here: {error}"
                    )
                )
            )

    def stop_for(self, cell: ActorCell, envelope: Envelope) -> None:
        """Stop ``cell`` for a remote ``ref.stop()`` and reply once it has stopped."""

        async def stop_then_reply() -> None:
            await cell.ref.stop()
            self.send_reply(envelope, outcome.Value(None), cell.path)

        self._nursery.start_soon(stop_then_reply)

    # -- stream bookkeeping -----------------------------------------------------------------

    def acknowledge(self, key: str, entry_id: bytes) -> None:
        """Acknowledge (and trim) one handled entry; sent in batches."""
        ids = self._acks.get(key)
        if ids is None:
            self._acks[key] = [entry_id]
            self._acks_ready.unpark()
        else:
            ids.append(entry_id)

    def _flush_acks_now(self) -> None:
        acks, self._acks = self._acks, {}
        for key, ids in acks.items():
            self.cmd.send_nowait("XACK", key, GROUP, *ids)
            self.cmd.send_nowait("XDEL", key, *ids)

    def release(self, key: str, ids: list[bytes]) -> None:
        """Hand entries back undelivered: live hosts claim them at their next sweep."""
        self.cmd.send_nowait(
            "XCLAIM", key, GROUP, RELEASED, 0, *ids, "IDLE", self.claim_after_ms * 10, "JUSTID"
        )

    async def ensure_group(self, key: str) -> None:
        """Create the consumer group of ``key`` (from the stream's start) if it is missing."""
        try:
            await self.cmd.execute("XGROUP", "CREATE", key, GROUP, "0", "MKSTREAM")
        except RedisError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def alive_consumers(self, consumers: Iterable[bytes]) -> set[bytes]:
        """Which of ``consumers`` (node names) have a live heartbeat."""
        names = [name for name in consumers if name != RELEASED.encode()]
        if not names:
            return set()
        replies = await self.cmd.execute_many(
            [["EXISTS", self.keys.heartbeat(name.decode(errors="replace"))] for name in names]
        )
        return {name for name, alive in zip(names, replies, strict=True) if alive == 1}

    async def entry_fields(self, key: str, entry_id: bytes) -> list[bytes] | None:
        """The fields of one entry, ``[field, value, ...]`` (None if it was deleted)."""
        entries = parse_entries(await self.cmd.execute("XRANGE", key, entry_id, entry_id))
        return entries[0][1] if entries else None

    async def to_dead_letter_stream(
        self,
        key: str,
        entry_id: bytes,
        fields: list[bytes] | None,
        reason: str,
        kind: DeadLetterReason,
    ) -> None:
        """Move an entry to the cluster's dead-letter stream with ``reason``; count it."""
        payload = payload_of(fields) or b""
        self.cmd.send_nowait(
            "XADD",
            self.keys.dead_letters,
            "MAXLEN",
            "~",
            _DEAD_LETTERS_KEPT,
            "*",
            "stream",
            key,
            "id",
            entry_id,
            "reason",
            reason,
            "node",
            self.node,
            "m",
            payload if isinstance(payload, bytes) else b"",
        )
        self.cmd.send_nowait("XACK", key, GROUP, entry_id)
        self.cmd.send_nowait("XDEL", key, entry_id)
        self.system.dead_letters._record(key, payload, kind, reason)

    @staticmethod
    def wall_time() -> float:
        """Seconds since the epoch (ask deadlines cross machines as wall-clock times)."""
        return time.time()

    # -- background tasks -------------------------------------------------------------------

    async def heartbeat_once(self) -> None:
        """Say this node lives (for ``claim_after`` seconds) and refresh its statistics."""
        ttl = self.claim_after_ms
        info = json.dumps(
            {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "hosts": sorted({feeder.cell.name for feeder in self._feeders.values()}),
            }
        )
        commands: list[list[Any]] = [
            ["SET", self.keys.heartbeat(self.node), info, "PX", ttl],
            ["HSET", self.keys.nodes, self.node, info],
            ["PEXPIRE", self.reply_key, ttl * 10],
        ]
        commands.extend(["PEXPIRE", key, ttl * 10] for key in self._private.values())
        await self.cmd.execute_many(commands)

    async def _heartbeat_forever(self) -> None:
        while True:
            await trio.sleep(self.cluster.claim_after / 3)
            await self.heartbeat_once()
            await self._refresh_statistics()

    async def _refresh_statistics(self) -> None:
        feeders = list(self._feeders.items())
        if not feeders:
            return
        commands: list[list[Any]] = []
        for key, _ in feeders:
            commands += [
                ["XLEN", key],
                ["XPENDING", key, GROUP],
                ["XINFO", "CONSUMERS", key, GROUP],
            ]
        replies = await self.cmd.execute_many(commands)
        for index, (key, feeder) in enumerate(feeders):
            length, pending, consumers = replies[3 * index : 3 * index + 3]
            hosts: tuple[str, ...] = ()
            if isinstance(consumers, list):
                hosts = tuple(
                    sorted(
                        _consumer_name(row) for row in consumers if _consumer_name(row) != RELEASED
                    )
                )
            self._export_stats[key] = ExportStatistics(
                name=feeder.cell.name,
                stream=key,
                length=length if isinstance(length, int) else 0,
                pending=pending[0] if isinstance(pending, list) and pending else 0,
                redelivered=feeder.redelivered,
                received=feeder.received,
                hosts=hosts,
            )

    async def _flush_acks_forever(self) -> None:
        while True:
            if not self._acks:
                await self._acks_ready.park()
            # Let the handlers that are runnable now finish first: one batch for all of them.
            await trio.lowlevel.checkpoint()
            self._flush_acks_now()

    async def stop_reading_replies(self) -> None:
        """End the reply reader without cutting a blocked read short (no reply is lost)."""
        self._replies_stopping = True
        await unblock_until(self._replies_done, lambda: self._replies_conn, via=self.cmd)

    async def _read_replies_forever(self) -> None:
        try:
            async with open_connection(
                self.address, name=f"triactor:{self.node}:replies", outage_log=self.outage_log
            ) as conn:
                self._replies_conn = conn
                await self._read_replies(conn)
        finally:
            self._replies_conn = None
            self._replies_done.set()

    async def _read_replies(self, conn: RedisConnection) -> None:
        last = b"0-0"
        while not self._replies_stopping:
            try:
                reply = await conn.execute_blocking(
                    "XREAD",
                    "COUNT",
                    1000,
                    "BLOCK",
                    _REPLY_BLOCK_MS,
                    "STREAMS",
                    self.reply_key,
                    last,
                    unblock_via=self.cmd,
                )
            except RedisConnectionLost:
                continue  # the replies stay in the stream: read again from the last one

            entries = parse_read(reply)
            for entry_id, fields in entries:
                last = entry_id
                if fields is None:
                    continue
                try:
                    envelope = self.codec.decode(payload_of(fields))
                except Undecodable as exc:
                    await self.to_dead_letter_stream(
                        self.reply_key,
                        entry_id,
                        fields,
                        f"undecodable reply: {exc}",
                        DeadLetterReason.UNDECODABLE,
                    )
                    self._fail_reply(exc)
                    continue
                if envelope.kind is REPLY or envelope.kind is FAILURE:
                    self._take_reply(envelope)
            if entries:
                self.cmd.send_nowait("XTRIM", self.reply_key, "MINID", last)


def _unwrap_outcome(result: outcome.Outcome[Any]) -> object:
    if isinstance(result, outcome.Value):
        return result.value
    assert isinstance(result, outcome.Error)
    return result.error


def _consumer_name(row: Any) -> str:
    if isinstance(row, list):
        for index in range(0, len(row) - 1, 2):
            if row[index] == b"name":
                value = row[index + 1]
                return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    return "?"


def _remote_error(data: dict[str, Any]) -> BaseException:
    own = _OWN_ERRORS.get(data["type"])
    if own is AskCycleError:
        cycle = tuple(data.get("cycle") or ())
        error: ActorError = AskCycleError(cycle, "?")
        error.args = (data["message"],)
        return error
    if own is not None:
        return own(data["message"])
    return RemoteError(
        data["message"],
        remote_type=data["type"],
        actor=data["actor"],
        node=data["node"],
        remote_traceback=data["traceback"],
    )


@asynccontextmanager
async def open_node(cluster: Cluster | str, system: ActorSystem) -> AsyncIterator[Node]:
    """Join ``cluster`` for ``system``'s lifetime: connect, start the heartbeat and readers.

    Raises:
        TypeError, ValueError: for a bad cluster argument or URL.
    """
    cluster = Cluster.coerce(cluster)
    address = RedisAddress.parse(cluster.url)
    outage_log = OutageLog()  # the outage of the server is logged once for this node
    async with (
        open_connection(address, name=f"triactor:{cluster.node}", outage_log=outage_log) as cmd,
        trio.open_nursery() as nursery,
    ):
        node = Node(cluster, system, address, cmd, nursery)
        node.outage_log = outage_log
        await cmd.execute("DEL", node.reply_key)  # replies to an earlier life of this name
        await node.heartbeat_once()
        nursery.start_soon(node._heartbeat_forever, name="triactor heartbeat")
        nursery.start_soon(node._flush_acks_forever, name="triactor acks")
        nursery.start_soon(node._read_replies_forever, name="triactor replies")
        logger.debug("node {} joined cluster {!r} at {}", node.node, cluster.name, address)
        try:
            yield node
        finally:
            node.closed = True
            with trio.CancelScope(shield=True), trio.move_on_after(_CLOSE_FLUSH_SECONDS):
                await node.stop_reading_replies()
            nursery.cancel_scope.cancel()
