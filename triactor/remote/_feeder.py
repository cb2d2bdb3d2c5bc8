"""The stream-fed mailbox: one exported actor's cell, fed from its Redis stream.

A feeder reads its stream through the consumer group (as this node's consumer) only as much as
the actor's mailbox has room for, and queues each message as a :class:`Request` carrying a
delivery (:class:`_Entry`). When the handler ends the entry is acknowledged (and, for an ask,
answered); when the actor stops for good without handling it, the entry is handed back for
another host. A sweeper claims the entries of dead nodes and sends poison to the dead-letter
stream.
"""

from __future__ import annotations

import traceback
from typing import TYPE_CHECKING, Any, Final, final

import outcome
import trio

from .._errors import AskCycleError, NoHandler
from ..actors import ActorState, DeadLetterReason
from ..actors._request import Request
from ._codec import ASK, STOP, TELL, Envelope, Undecodable
from ._keys import GROUP, RELEASED
from ._redis import RedisConnectionLost, RedisError, open_connection, unblock_until

if TYPE_CHECKING:
    from ..actors._cell import ActorCell
    from ._node import Node

__all__ = ["Feeder", "format_traceback", "parse_entries", "parse_read", "payload_of"]

_BLOCK_MS: Final = 5000
_ROOM_POLL: Final = 0.001
_START_POLL: Final = 0.01


def parse_entries(reply: Any) -> list[tuple[bytes, list[bytes] | None]]:
    """Turn an ``XCLAIM``/``XRANGE`` reply into ``(id, [field, value, ...])`` pairs.

    The field list is None for an entry deleted since it was delivered.
    """
    return [
        (row[0], row[1] if isinstance(row[1], list) else None)
        for row in reply or ()
        if isinstance(row, list) and len(row) == 2
    ]


def parse_read(reply: Any) -> list[tuple[bytes, list[bytes] | None]]:
    """Turn an ``XREADGROUP``/``XREAD`` reply (one stream) into ``(id, fields)`` pairs."""
    if not reply:
        return []
    return parse_entries(reply[0][1])


def payload_of(flat: list[bytes] | None) -> bytes | None:
    """The ``m`` field of an entry's field list (None if it has none)."""
    if not flat:
        return None
    for index in range(0, len(flat) - 1, 2):
        if flat[index] == b"m":
            return flat[index + 1]
    return None


@final
class _Entry:
    """The delivery of one stream entry: acknowledge it, answer it, or hand it back."""

    __slots__ = ("envelope", "feeder", "id", "target")

    def __init__(
        self, feeder: Feeder, entry_id: bytes, envelope: Envelope, target: ActorCell
    ) -> None:
        self.feeder = feeder
        self.id = entry_id
        self.envelope = envelope
        #: The cell that handles it: the exported actor, or the routee a router chose.
        self.target = target

    def done(self, request: Request, result: outcome.Outcome[Any]) -> None:
        feeder = self.feeder
        feeder.in_flight.pop(self.id, None)
        envelope = self.envelope
        if envelope.kind is ASK:
            feeder.node.send_reply(envelope, result, self.target.path)
        elif isinstance(result, outcome.Error) and isinstance(result.error, NoHandler):
            self.target.dead_letter(request.message, DeadLetterReason.NO_HANDLER, str(result.error))
        feeder.node.acknowledge(feeder.key, self.id)

    def release(self, request: Request) -> None:
        self.feeder.in_flight.pop(self.id, None)
        self.feeder.node.release(self.feeder.key, [self.id])


@final
class Feeder:
    """Feeds one cell from one stream until the cell stops or the node stops feeding."""

    def __init__(self, node: Node, cell: ActorCell, key: str) -> None:
        self.node = node
        self.cell = cell
        self.key = key
        #: Entries queued in the cell's mailbox or being handled, by entry id.
        self.in_flight: dict[bytes, Request] = {}
        self.cell_targets = (cell,)
        self.received = 0
        self.redelivered = 0
        self._stopping = False
        self._conn: Any = None
        self._done = trio.Event()
        self._scope = trio.CancelScope()
        self._claiming = trio.Lock()

    def __repr__(self) -> str:
        return f"<Feeder {self.key} -> {self.cell.path}, {len(self.in_flight)} in flight>"

    # -- life -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Read, then sweep, until stopped; hand back what was read but not queued."""
        try:
            with self._scope:
                await self.node.ensure_group(self.key)
                # Read only once the actor runs (a router's routees are known by then); what
                # comes meanwhile waits in the stream.
                while not self.cell.started and self.cell.state is not ActorState.STOPPED:  # noqa: ASYNC110
                    await trio.sleep(_START_POLL)
                self.node.publish_policy(self)
                async with (
                    open_connection(
                        self.node.address,
                        name=f"triactor:{self.node.node}:feed",
                        outage_log=self.node.outage_log,
                    ) as conn,
                    trio.open_nursery() as nursery,
                ):
                    self._conn = conn
                    nursery.start_soon(self._sweep_forever)
                    await self.recover_own()
                    await self._read_forever(conn)
                    nursery.cancel_scope.cancel()
        finally:
            self._conn = None
            self._done.set()

    async def stop(self) -> None:
        """Stop reading (at once: a blocked read is unblocked) and wait until the reader ends."""
        self._stopping = True
        await unblock_until(self._done, lambda: self._conn, via=self.node.cmd)
        self._scope.cancel()

    def cancel(self) -> None:
        """End the feeder now (its cell stopped for good)."""
        self._stopping = True
        self._scope.cancel()

    # -- reading --------------------------------------------------------------------------

    def targets(self) -> tuple[ActorCell, ...]:
        """The cells this stream feeds: the actor's, or a router's routees'."""
        routee_cells = getattr(self.cell.ref, "_routee_cells", None)
        if routee_cells is None:
            return self.cell_targets
        cells: tuple[ActorCell, ...] = routee_cells()
        return cells

    def _choose(self) -> ActorCell:
        choose = getattr(self.cell.ref, "_choose_routee", None)
        if choose is None:
            return self.cell
        chosen: ActorCell | None = choose()
        return self.cell if chosen is None else chosen

    def capacity(self) -> int:
        """How many messages the fed mailboxes hold in all."""
        return sum(cell.mailbox.capacity for cell in self.targets())

    def _room(self) -> int:
        return max(1, sum(c.mailbox.capacity - len(c.mailbox) for c in self.targets()))

    async def _wait_for_room(self) -> None:
        # Read in large batches: while the mailboxes are more than three quarters full, wait
        # for the actor to work them down (it is busy anyway) instead of reading one entry
        # per round trip as slots free up one by one.
        capacity = self.capacity()
        low_water = capacity - max(1, capacity // 4)
        while (  # noqa: ASYNC110 (no event to wait on: the pop is the hot path)
            sum(len(c.mailbox) for c in self.targets()) > low_water
            and not self.cell.mailbox.closed
            and not self._stopping
        ):
            await trio.sleep(_ROOM_POLL)

    async def _read_forever(self, conn: Any) -> None:
        node = self.node
        while not self._stopping:
            await self._wait_for_room()
            try:
                reply = await conn.execute_blocking(
                    "XREADGROUP",
                    "GROUP",
                    GROUP,
                    node.node,
                    "COUNT",
                    self._room(),
                    "BLOCK",
                    _BLOCK_MS,
                    "STREAMS",
                    self.key,
                    ">",
                    unblock_via=node.cmd,
                )
            except trio.Cancelled:
                abandoned = conn.take_abandoned_reply()
                ids = [entry_id for entry_id, _ in parse_read(abandoned)]
                if ids:
                    node.release(self.key, ids)
                raise
            except RedisConnectionLost:
                await self.recover_own()
                continue
            except RedisError as exc:
                if "NOGROUP" in str(exc):
                    await node.ensure_group(self.key)
                    continue
                raise
            await self.deliver(parse_read(reply))

    async def deliver(self, entries: list[tuple[bytes, list[bytes] | None]]) -> None:
        """Queue each entry in the cell's mailbox (waiting for room), or dispose of it."""
        node = self.node
        key = self.key
        routed = hasattr(self.cell.ref, "_choose_routee")
        decode = node.codec.decode
        in_flight = self.in_flight
        for entry_id, flat in entries:
            if entry_id in in_flight:
                continue  # already here: read again after a reconnect
            if flat is None:
                node.acknowledge(key, entry_id)  # trimmed since: nothing to deliver
                continue
            self.received += 1
            try:
                envelope = decode(
                    flat[1] if len(flat) == 2 and flat[0] == b"m" else payload_of(flat)
                )
            except Undecodable as exc:
                await node.to_dead_letter_stream(
                    key, entry_id, flat, f"undecodable: {exc}", DeadLetterReason.UNDECODABLE
                )
                continue
            kind = envelope.kind
            cell = self._choose() if routed else self.cell
            if kind is not TELL:
                if kind is STOP:
                    node.acknowledge(key, entry_id)
                    node.stop_for(cell, envelope)
                    continue
                if kind is not ASK:
                    await node.to_dead_letter_stream(
                        key,
                        entry_id,
                        flat,
                        f"undeliverable: a {envelope.kind.name} envelope in a mailbox stream",
                        DeadLetterReason.UNDECODABLE,
                    )
                    continue
            chain = node.local_chain(envelope.chain) if envelope.chain else ()
            if kind is ASK:
                if cell.max_concurrency == 1 and cell.path in chain:
                    cycle = (*chain[chain.index(cell.path) :], cell.path)
                    error = AskCycleError(cycle, type(envelope.message).__qualname__)
                    node.send_reply(envelope, outcome.Error(error), cell.path)
                    node.acknowledge(key, entry_id)
                    continue
                if envelope.deadline and envelope.deadline < node.wall_time():
                    cell.dead_letter(
                        envelope.message,
                        DeadLetterReason.EXPIRED,
                        "the remote asker's timeout had passed before it was delivered",
                    )
                    node.acknowledge(key, entry_id)
                    continue
            request = Request(envelope.message, cell, chain, _Entry(self, entry_id, envelope, cell))
            in_flight[entry_id] = request
            mailbox = cell.mailbox
            if len(mailbox) < mailbox.capacity and mailbox.put_nowait(request, envelope.priority):
                continue
            if not await mailbox.put_waiting(request, envelope.priority):
                request.release()  # the actor is stopping for good: another host takes it

    # -- recovery -------------------------------------------------------------------------

    async def recover_own(self) -> None:
        """Take up this node's own unacknowledged entries (after a restart or a reconnect)."""
        node = self.node
        async with self._claiming:
            rows = await node.cmd.execute("XPENDING", self.key, GROUP, "-", "+", 1000, node.node)
            await self._claim_rows(rows or [], own=True)

    async def _sweep_forever(self) -> None:
        interval = self.node.sweep_interval
        while True:
            await trio.sleep(interval)
            await self.sweep()

    async def sweep(self) -> None:
        """Claim the entries of dead consumers; send poison to the dead-letter stream."""
        async with self._claiming:  # one claim at a time: two would count a delivery twice
            await self._sweep()

    async def _sweep(self) -> None:
        node = self.node
        rows = await node.cmd.execute(
            "XPENDING", self.key, GROUP, "IDLE", node.claim_after_ms, "-", "+", self._room()
        )
        if not rows:
            return
        alive = await node.alive_consumers({row[1] for row in rows})
        await self._claim_rows([row for row in rows if row[1] not in alive], own=False)

    async def _claim_rows(self, rows: list[Any], *, own: bool) -> None:
        """Take over the pending entries ``rows`` (``XPENDING`` rows, oldest first).

        Only the entries a lost host may have been handling when it went (its oldest
        ``max_concurrency`` pending entries) count as delivered again; the ones that merely
        waited in its mailbox keep their delivery count (``XCLAIM ... RETRYCOUNT``), so that a
        poison message does not drag the messages queued behind it into the dead-letter stream.
        Entries the lost host handed back (``RELEASED``) were never being handled.
        """
        node = self.node
        suspects_left: dict[bytes, int] = {}
        by_count: dict[int | None, list[bytes]] = {}
        for entry_id, consumer, _idle, deliveries in rows:
            if entry_id in self.in_flight:
                continue
            left = suspects_left.setdefault(
                consumer, 0 if consumer == RELEASED.encode() else self.cell.max_concurrency
            )
            suspect = left > 0
            if suspect:
                suspects_left[consumer] = left - 1
                if deliveries >= node.cluster.max_deliveries:
                    fields = await node.entry_fields(self.key, entry_id)
                    await node.to_dead_letter_stream(
                        self.key,
                        entry_id,
                        fields,
                        f"poison: delivered {deliveries} times without an acknowledgement "
                        f"(last to {consumer.decode(errors='replace')})",
                        DeadLetterReason.POISON,
                    )
                    continue
            by_count.setdefault(None if suspect else deliveries, []).append(entry_id)
        min_idle = 0 if own else node.claim_after_ms
        for count, ids in by_count.items():
            retry = () if count is None else ("RETRYCOUNT", count)
            reply = await node.cmd.execute(
                "XCLAIM", self.key, GROUP, node.node, min_idle, *ids, *retry
            )
            entries = parse_entries(reply)
            self.redelivered += len(entries)
            await self.deliver(entries)


def format_traceback(error: BaseException) -> str:
    """The traceback text a remote asker gets with a :class:`RemoteError`."""
    try:
        return "".join(traceback.format_exception(error))
    except Exception:
        return f"<traceback of {type(error).__qualname__} could not be formatted>"
