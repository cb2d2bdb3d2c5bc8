"""The cluster in one process: two nodes (two actor systems) on one real server.

These run against the session's private Redis/Valkey server (see conftest); they use the real
clock, since a real server answers in real time, and bound every wait with ``fail_after``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import msgspec
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import triactor
from tests.polling import eventually
from triactor import (
    Actor,
    ActorRef,
    AskCycleError,
    DeadLetterReason,
    MailboxFull,
    Overflow,
    RemoteError,
    handler,
    open_actor_system,
)
from triactor.remote._redis import open_connection

pytestmark = pytest.mark.redis


@attrs.frozen
class Score:
    value: int


@attrs.frozen
class Scored:
    value: int
    by: str


@attrs.frozen
class Boom:
    text: str


@attrs.frozen
class Nap:
    seconds: float


@attrs.frozen
class Note:
    value: int


@attrs.frozen
class CallMeBack:
    reply_to: ActorRef
    value: int


@attrs.frozen
class Forward:
    target: str
    depth: int


class Scorer(Actor):
    mailbox_capacity = 10

    def __init__(self) -> None:
        self.notes: list[int] = []

    @handler
    async def score(self, msg: Score) -> Scored:
        return Scored(msg.value * 2, self.system.node or "")

    @handler
    async def boom(self, msg: Boom) -> None:
        raise ValueError(msg.text)

    @handler
    async def nap(self, msg: Nap) -> str:
        await trio.sleep(msg.seconds)
        return "rested"

    @handler
    async def note(self, msg: Note) -> None:
        self.notes.append(msg.value)

    @handler
    async def call_back(self, msg: CallMeBack) -> None:
        await msg.reply_to.tell(Note(msg.value + 1))

    @handler
    async def forward(self, msg: Forward) -> str:
        target = self.system.remote(msg.target)
        if msg.depth == 0:
            reply: str = await target.ask(Nap(0), timeout=5)
            return reply
        reply = await target.ask(Forward(self.name, msg.depth - 1), timeout=5)
        return reply


class Collector(Actor):
    def __init__(self) -> None:
        self.notes: list[int] = []

    @handler
    async def note(self, msg: Note) -> None:
        self.notes.append(msg.value)

    @handler
    async def get(self, msg: Score) -> list[int]:
        return self.notes


@pytest.fixture
def cluster_name() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@asynccontextmanager
async def node(
    url: str, cluster: str, name: str, **options: object
) -> AsyncIterator[triactor.ActorSystem]:
    with trio.fail_after(10):
        async with open_actor_system(
            cluster=triactor.Cluster(url, name=cluster, node=name, claim_after=1.0, **options)
        ) as system:
            yield system


async def test_tell_and_ask_between_two_nodes(redis_url: str, cluster_name: str) -> None:
    async with node(redis_url, cluster_name, "a") as a, node(redis_url, cluster_name, "b") as b:
        local = await a.spawn(Scorer, name="scorer", export=True)
        scorer = b.remote("scorer", Scorer)
        with trio.fail_after(5):
            assert await scorer.ask(Score(4)) == Scored(8, "a")
            for value in range(5):
                await scorer.tell(Note(value))
            assert await scorer.ask(Score(1)) == Scored(2, "a")
        assert a.lookup("scorer") is local
        instance_notes = await local.ask(Nap(0))
        assert instance_notes == "rested"


async def test_remote_exception_arrives_as_remote_error(redis_url: str, cluster_name: str) -> None:
    async with node(redis_url, cluster_name, "a") as a, node(redis_url, cluster_name, "b") as b:
        tree = triactor.Supervisor(
            "root", [triactor.ChildSpec(Scorer, name="scorer", export=True)], max_restarts=10
        )
        await a.spawn(tree)
        with trio.fail_after(5), pytest.raises(RemoteError) as info:
            await b.remote("scorer", Scorer).ask(Boom("bad input"))
        error = info.value
        assert error.remote_type == "builtins.ValueError"
        assert error.node == "a"
        assert error.actor == "/root/scorer"
        assert "bad input" in str(error) and "ValueError" in error.remote_traceback
        # The crash was handled like a local one: dead-lettered on the host, then restarted.
        crashed = [d for d in a.dead_letters if d.reason is DeadLetterReason.CRASHED]
        assert [type(d.message) for d in crashed] == [Boom]
        with trio.fail_after(5):
            assert await b.remote("scorer", Scorer).ask(Score(1)) == Scored(2, "a")


async def test_timeout_then_late_reply_goes_to_dead_letters(
    redis_url: str, cluster_name: str
) -> None:
    async with node(redis_url, cluster_name, "a") as a, node(redis_url, cluster_name, "b") as b:
        await a.spawn(Scorer, name="scorer", export=True)
        scorer = b.remote("scorer")
        with pytest.raises(trio.TooSlowError, match="remote actor 'scorer'"):
            await scorer.ask(Nap(0.5), timeout=0.1)
        await eventually(
            lambda: any(d.reason is DeadLetterReason.LATE_REPLY for d in b.dead_letters),
            5,
            "the late reply",
        )
        late = [d for d in b.dead_letters if d.reason is DeadLetterReason.LATE_REPLY]
        assert [d.message for d in late] == ["rested"]


async def test_ask_cycle_across_two_nodes_is_refused(redis_url: str, cluster_name: str) -> None:
    async with node(redis_url, cluster_name, "a") as a, node(redis_url, cluster_name, "b") as b:
        for system, name in ((a, "ping"), (b, "pong")):
            tree = triactor.Supervisor(
                f"sup-{name}",
                [triactor.ChildSpec(Scorer, name=name, export=True)],
                max_restarts=10,
            )
            await system.spawn(tree)
        with trio.fail_after(5), pytest.raises(AskCycleError):
            # ping asks pong, which asks ping back while ping waits: refused, not a hang.
            await a.remote("ping").ask(Forward("pong", 1))
        with trio.fail_after(5):  # a chain without a cycle still works
            assert await a.remote("ping").ask(Forward("pong", 0)) == "rested"


async def test_refs_inside_messages_arrive_as_working_refs(
    redis_url: str, cluster_name: str
) -> None:
    async with node(redis_url, cluster_name, "a") as a, node(redis_url, cluster_name, "b") as b:
        await a.spawn(Scorer, name="scorer", export=True)
        collector = await b.spawn(Collector, name="collector")  # not exported
        await b.remote("scorer").tell(CallMeBack(collector, 41))
        await eventually(lambda: collector.ask(Score(0)), 5, "the call back")
        assert await collector.ask(Score(0)) == [42]


async def test_backpressure_blocks_the_sender_and_bounds_the_stream(
    redis_url: str, cluster_name: str
) -> None:
    async with node(redis_url, cluster_name, "a") as a, node(redis_url, cluster_name, "b") as b:
        slow = await a.spawn(Scorer, name="slow", export=True, mailbox_capacity=5)
        await slow.tell(Nap(1.0))  # keeps it busy while the producer runs
        ref = b.remote("slow")
        sent = 0
        with trio.move_on_after(0.5):
            while True:
                await ref.tell(Note(sent))
                sent += 1
        bound = 5 * 2
        # The producer was held back: the cluster's backlog plus the local queue.
        assert sent <= bound + 256 + 5 + 1
        async with open_connection(redis_url) as conn:
            length = await conn.execute("XLEN", f"triactor:{cluster_name}:mailbox:slow")
        assert length <= bound + 1


async def test_fail_policy_raises_mailbox_full_at_the_remote_sender(
    redis_url: str, cluster_name: str
) -> None:
    async with node(redis_url, cluster_name, "a") as a, node(redis_url, cluster_name, "b") as b:
        busy = await a.spawn(
            Scorer, name="busy", export=True, mailbox_capacity=2, overflow=Overflow.FAIL
        )
        await busy.tell(Nap(2.0))
        ref = b.remote("busy")
        with trio.fail_after(5), pytest.raises(MailboxFull, match="remote actor 'busy'"):
            while True:
                await ref.tell(Note(1))
                await trio.sleep(0.001)


async def test_graceful_shutdown_handles_and_acknowledges_what_was_read(
    redis_url: str, cluster_name: str
) -> None:
    async with node(redis_url, cluster_name, "b") as b:
        ref = b.remote("scorer")
        for value in range(30):
            await ref.tell(Note(value))  # nobody hosts it yet: it waits in the cluster
        await eventually(lambda: ref.statistics().mailbox.depth >= 30, 5, "30 in the stream")
    async with node(redis_url, cluster_name, "a") as a:
        scorer = await a.spawn(Scorer, name="scorer", export=True)
        await eventually(lambda: scorer.statistics().processed >= 30, 5, "30 handled")
    async with open_connection(redis_url) as conn:
        key = f"triactor:{cluster_name}:mailbox:scorer"
        assert await conn.execute("XLEN", key) == 0
        pending = await conn.execute("XPENDING", key, "triactor")
        assert pending[0] == 0


async def test_unknown_types_are_refused_into_the_dead_letter_stream(
    redis_url: str, cluster_name: str
) -> None:
    @attrs.frozen
    class Unknown:
        x: int

    async with node(redis_url, cluster_name, "a") as a, node(redis_url, cluster_name, "b") as b:
        scorer = await a.spawn(Scorer, name="scorer", export=True)
        await b.remote("scorer").tell(Unknown(1))
        await b.remote("scorer").tell(Note(5))
        await eventually(lambda: scorer.statistics().processed >= 1, 5, "the note handled")
        undecodable = [d for d in a.dead_letters if d.reason is DeadLetterReason.UNDECODABLE]
        assert len(undecodable) == 1 and "not allowed on this node" in undecodable[0].detail
        async with open_connection(redis_url) as conn:
            rows = await conn.execute("XRANGE", f"triactor:{cluster_name}:dead-letters", "-", "+")
        assert len(rows) == 1
        fields = dict(zip(rows[0][1][::2], rows[0][1][1::2], strict=True))
        assert b"not allowed" in fields[b"reason"]


async def test_export_needs_a_cluster() -> None:
    async with open_actor_system() as system:
        with pytest.raises(ValueError, match="no cluster"):
            await system.spawn(Scorer, name="scorer", export=True)
        with pytest.raises(ValueError, match="needs a cluster"):
            system.remote("scorer")


def test_cluster_options_are_validated() -> None:
    with pytest.raises(ValueError, match="redis://"):
        triactor.Cluster("http://nope")
    with pytest.raises(ValueError, match="claim_after"):
        triactor.Cluster("redis://localhost", claim_after=0)
    with pytest.raises(ValueError, match="max_deliveries"):
        triactor.Cluster("redis://localhost", max_deliveries=0)
    assert triactor.Cluster("redis://localhost").node  # host-pid by default


_ints = st.integers(-(2**63), 2**63 - 1)
_field_values = st.one_of(
    st.binary(max_size=64),
    st.builds(
        lambda items: msgspec.msgpack.encode(items),
        st.lists(
            st.one_of(_ints, st.text(max_size=8), st.none(), st.binary(max_size=8)),
            max_size=12,
        ),
    ),
    st.builds(
        lambda kind, tag, data: msgspec.msgpack.encode(
            [1, kind, tag, data, 0, "", 0, [], 0.0, "x"]
        ),
        st.integers(-2, 6),
        st.sampled_from(["", "tests.test_remote:Note", "builtins:eval", "os:system"]),
        st.one_of(st.none(), _ints, st.dictionaries(st.text(max_size=4), _ints)),
    ),
)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    entries=st.lists(
        st.tuples(st.sampled_from([b"m", b"x", b""]), _field_values), min_size=1, max_size=5
    )
)
async def test_fuzzed_entries_never_crash_a_node(
    redis_url: str, entries: list[tuple[bytes, bytes]]
) -> None:
    cluster = f"f{uuid.uuid4().hex[:10]}"
    async with node(redis_url, cluster, "a") as a:
        scorer = await a.spawn(Scorer, name="scorer", export=True)
        a.remote("scorer", Scorer)  # replies decode as Scored here
        key = f"triactor:{cluster}:mailbox:scorer"
        async with open_connection(redis_url) as conn:
            for field, value in entries:
                await conn.execute("XADD", key, "*", field or b"m", value)
            await conn.execute("XADD", key, "*", "m", triactor_note(a, 7))

            async def settled() -> bool:
                pending = await conn.execute("XPENDING", key, "triactor")
                return bool(await conn.execute("XLEN", key) == 0 and pending[0] == 0)

            await eventually(settled, 5, "every entry handled or dead-lettered")
            dead = await conn.execute("XLEN", f"triactor:{cluster}:dead-letters")
        stats = scorer.statistics()
        by_reason = a.dead_letters.count_by_reason()
        undecodable = by_reason.get(DeadLetterReason.UNDECODABLE, 0)
        # Every entry was handled, refused for want of a handler (a dead letter), or moved to
        # the dead-letter stream with its reason: none was lost, and the node still serves.
        assert undecodable == dead
        no_handler = by_reason.get(DeadLetterReason.NO_HANDLER, 0)
        assert stats.processed + no_handler + undecodable == len(entries) + 1
        assert stats.state in ("idle", "processing")
        assert await scorer.ask(Score(1)) == Scored(2, "a")


async def test_an_undecodable_reply_fails_the_ask_at_once(
    redis_url: str, cluster_name: str
) -> None:
    async with node(redis_url, cluster_name, "a") as a, node(redis_url, cluster_name, "b") as b:
        await a.spawn(Scorer, name="scorer", export=True)
        with trio.fail_after(5), pytest.raises(triactor.ActorError, match="could not be decoded"):
            await b.remote("scorer").ask(Score(1))  # b does not know Scored


def triactor_note(system: triactor.ActorSystem, value: int) -> bytes:
    transport = system._transport
    assert transport is not None
    from triactor.remote._codec import Kind

    return transport.codec.encode(Kind.TELL, Note(value))  # type: ignore[attr-defined, no-any-return]


async def test_status_and_metrics_show_exported_names(redis_url: str, cluster_name: str) -> None:
    from triactor.diagnostics._metrics import render_metrics
    from triactor.launcher._introspection import render_status

    async with node(redis_url, cluster_name, "a") as a:
        scorer = await a.spawn(Scorer, name="scorer", export=True)
        for value in range(3):
            await a.remote("scorer").tell(Note(value))
        await eventually(lambda: scorer.statistics().processed >= 3, 5, "3 handled")
        await a._transport._refresh_statistics()  # type: ignore[union-attr]
        [export] = a.cluster_statistics()
        assert export.name == "scorer" and export.received == 3 and export.hosts == ("a",)
        status = render_status(a)
        assert "cluster node a" in status and "scorer: stream triactor:" in status
        metrics = render_metrics(a)
        assert 'triactor_cluster_received_total{name="scorer"} 3' in metrics
        assert 'triactor_cluster_hosts{name="scorer"} 1' in metrics


def test_a_portal_joins_a_cluster(redis_url: str, cluster_name: str) -> None:
    tree = triactor.Supervisor("root", [triactor.ChildSpec(Scorer, name="scorer", export=True)])
    cluster = triactor.Cluster(redis_url, name=cluster_name, node="portal")
    with triactor.start_in_thread(tree, cluster=cluster) as portal:
        assert portal.ask("scorer", Score(2), timeout=10) == Scored(4, "portal")

    async def ask_from_another_node() -> object:
        async with node(redis_url, cluster_name, "asker") as asker:
            return await asker.remote("scorer", Scorer).ask(Score(3), timeout=10)

    with triactor.start_in_thread(tree, cluster=cluster):
        assert trio.run(ask_from_another_node) == Scored(6, "portal")


async def test_messages_queued_behind_a_lost_message_keep_their_delivery_count(
    redis_url: str, cluster_name: str
) -> None:
    # A node that dies holding a poison message and the messages queued behind it: only the
    # one it was handling counts as delivered again when a live node takes them over.
    key = f"triactor:{cluster_name}:mailbox:scorer"
    async with node(redis_url, cluster_name, "b") as b:
        await b.remote("scorer").tell(Nap(2.0))  # was being handled when "gone" died
        for value in range(4):
            await b.remote("scorer").tell(Note(value))
        await eventually(lambda: b.remote("scorer").statistics().mailbox.depth >= 5, 5, "sent")
    async with open_connection(redis_url) as conn:
        await conn.execute("XGROUP", "CREATE", key, "triactor", "0", "MKSTREAM")
        await conn.execute("XREADGROUP", "GROUP", "triactor", "gone", "STREAMS", key, ">")
        before = await conn.execute("XPENDING", key, "triactor", "-", "+", 10)
        assert [row[3] for row in before] == [1] * 5
        ids = [row[0] for row in before]  # make them look delivered a minute ago
        await conn.execute(
            "XCLAIM", key, "triactor", "gone", 0, *ids, "IDLE", 60_000, "RETRYCOUNT", 1, "JUSTID"
        )
        async with node(redis_url, cluster_name, "a") as a:  # "gone" has no heartbeat
            scorer = await a.spawn(Scorer, name="scorer", export=True)

            async def taken_over() -> bool:
                rows = await conn.execute("XPENDING", key, "triactor", "-", "+", 10)
                return len(rows) == 5 and all(row[1] == b"a" for row in rows)

            await eventually(taken_over, 5, "the sweeper to take the entries over")
            after = await conn.execute("XPENDING", key, "triactor", "-", "+", 10)
            assert [(row[1], row[3]) for row in after] == [(b"a", 2)] + [(b"a", 1)] * 4
            await eventually(lambda: scorer.statistics().processed >= 5, 5, "taken over")
            feeder = a._transport._feeders[key]  # type: ignore[union-attr]
            assert feeder.redelivered == 5


async def test_check_messages_accepts_a_ref_inside_a_message() -> None:
    async with open_actor_system(check_messages=True) as system:
        collector = await system.spawn(Collector, name="collector")
        scorer = await system.spawn(Scorer, name="scorer")
        await scorer.tell(CallMeBack(collector, 1))  # refused as "not plain data" before
        await eventually(lambda: collector.ask(Score(0)), 5, "the call back")
        assert await collector.ask(Score(0)) == [2]


async def test_a_remote_ask_that_expired_in_the_stream_is_not_handled(
    redis_url: str, cluster_name: str
) -> None:
    async with node(redis_url, cluster_name, "b") as b:
        with pytest.raises(trio.TooSlowError):
            await b.remote("scorer", Scorer).ask(Note(1), timeout=0.05)  # hosted nowhere yet
        async with node(redis_url, cluster_name, "a") as a:
            scorer = await a.spawn(Scorer, name="scorer", export=True)
            await eventually(
                lambda: any(d.reason is DeadLetterReason.EXPIRED for d in a.dead_letters),
                5,
                "the expired ask dead-lettered",
            )
            assert scorer.statistics().processed == 0


class Fragile(Actor):
    """Crashes on ``Boom``; answers ``Score`` with the node's name."""

    @handler
    async def score(self, msg: Score) -> Scored:
        return Scored(msg.value, self.system.node or "")

    @handler
    async def boom(self, msg: Boom) -> None:
        raise ValueError(msg.text)


async def test_an_exported_child_keeps_its_stream_across_restarts_of_its_subtree(
    redis_url: str, cluster_name: str
) -> None:
    inner = triactor.Supervisor(
        "inner", [triactor.ChildSpec(Fragile, name="fragile", export=True)], max_restarts=0
    )
    tree = triactor.Supervisor("outer", [inner], max_restarts=10)
    async with node(redis_url, cluster_name, "a") as a, node(redis_url, cluster_name, "b") as b:
        await a.spawn(tree)
        fragile = b.remote("fragile", Fragile)
        for round_ in range(3):  # each crash makes "inner" give up and "outer" restart it
            await fragile.tell(Boom(f"crash {round_}"))
            with trio.fail_after(10):
                assert await fragile.ask(Score(round_)) == Scored(round_, "a")
        assert a.cluster_statistics()[0].name == "fragile"


async def test_an_exported_router_spreads_remote_work_over_its_routees(
    redis_url: str, cluster_name: str
) -> None:
    router = triactor.Router(
        "scorers", Scorer, 3, export=True, routing=triactor.Routing.ROUND_ROBIN
    )
    async with node(redis_url, cluster_name, "a") as a, node(redis_url, cluster_name, "b") as b:
        local = await a.spawn(router)
        scorers = b.remote("scorers", Scorer)
        with trio.fail_after(10):
            replies = [await scorers.ask(Score(n)) for n in range(6)]
        assert replies == [Scored(2 * n, "a") for n in range(6)]
        for n in range(30):
            await scorers.tell(Note(n))
        await eventually(
            lambda: sum(s.processed for s in local.routee_statistics()) >= 36, 5, "all handled"
        )  # type: ignore[attr-defined]
        per_routee = [s.processed for s in local.routee_statistics()]  # type: ignore[attr-defined]
        assert per_routee == [12, 12, 12]  # round robin over the 3 routees


@attrs.frozen
class Price:
    value: int


class Watcher(Actor):
    def __init__(self) -> None:
        self.prices: list[int] = []

    @handler
    async def price(self, msg: Price) -> None:
        self.prices.append(msg.value)

    @handler
    async def seen(self, msg: Score) -> list[int]:
        return self.prices


async def test_a_topic_reaches_subscribers_on_every_node_once(
    redis_url: str, cluster_name: str
) -> None:
    async with node(redis_url, cluster_name, "a") as a, node(redis_url, cluster_name, "b") as b:
        here = await a.spawn(Watcher, name="here")
        there = [await b.spawn(Watcher, name=f"there-{n}") for n in range(2)]
        a.subscribe(here, "prices")
        for watcher in there:
            b.subscribe(watcher, "prices")
        key = f"triactor:{cluster_name}:topic:prices"
        async with open_connection(redis_url) as conn:

            async def joined() -> bool:
                try:
                    groups = await conn.execute("XINFO", "GROUPS", key)
                except Exception:
                    return False
                return len(groups) == 2

            await eventually(joined, 5, "both nodes joined the topic")
        for value in range(5):
            assert await a.publish("prices", Price(value)) == 1  # a's own subscriber
        await b.publish("prices", Price(99))

        async def everyone_has_six() -> bool:
            seen = [await ref.ask(Score(0)) for ref in (here, *there)]
            return all(len(prices) >= 6 for prices in seen)

        await eventually(everyone_has_six, 5, "every subscriber got every price")
        for ref in (here, *there):
            prices = await ref.ask(Score(0))
            assert sorted(prices) == [0, 1, 2, 3, 4, 99]  # once each
            assert [p for p in prices if p != 99] == [0, 1, 2, 3, 4]  # in order per publisher
