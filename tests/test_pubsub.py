"""Pub-sub in one system: subscribe, publish, unsubscribe; a stopped subscriber leaves its
topics by itself; each subscriber's overflow policy applies to its own copy, and a full BLOCK
subscriber holds the publisher back at most ``timeout`` seconds, once."""

from __future__ import annotations

import attrs
import pytest
import trio
import trio.testing

from triactor import (
    Actor,
    ChildSpec,
    DeadLetterReason,
    Overflow,
    Supervisor,
    handler,
    open_actor_system,
)


@attrs.frozen
class Price:
    value: int


@attrs.frozen
class Crash:
    pass


@attrs.frozen
class Seen:
    pass


class Listener(Actor):
    """Records (value, time) of every price; ``Crash`` crashes it."""

    def __init__(self, seen: list[tuple[str, int, float]], topic: str = "") -> None:
        self.seen = seen
        self.topic = topic

    async def on_start(self) -> None:
        if self.topic:
            self.system.subscribe(self.ref, self.topic)

    @handler
    async def price(self, msg: Price) -> None:
        self.seen.append((self.name, msg.value, trio.current_time()))

    @handler
    async def crash(self, msg: Crash) -> None:
        raise RuntimeError("listener crashed")


class Stuck(Listener):
    """Handles each price slowly; a one-message mailbox that blocks senders when full."""

    mailbox_capacity = 1

    @handler
    async def price(self, msg: Price) -> None:
        await trio.sleep(100)
        self.seen.append((self.name, msg.value, trio.current_time()))


async def test_publish_reaches_every_subscriber_until_it_unsubscribes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[tuple[str, int, float]] = []
    async with open_actor_system(check_messages=True) as system:
        a = await system.spawn(Listener, seen, name="a")
        b = await system.spawn(Listener, seen, name="b")
        system.subscribe(a, "prices")
        system.subscribe(b, "prices")
        system.subscribe(a, "prices")  # once is enough
        system.subscribe(b, "other")
        assert system.subscribers("prices") == [a, b]
        assert await system.publish("prices", Price(1)) == 2
        system.unsubscribe(a, "prices")
        system.unsubscribe(a, "prices")  # not subscribed any more: nothing happens
        assert await system.publish("prices", Price(2)) == 1
        assert await system.publish("nobody", Price(3)) == 0
        await trio.sleep(1)
    assert sorted((name, value) for name, value, _ in seen) == [("a", 1), ("b", 1), ("b", 2)]
    assert system.dead_letters.count == 0


async def test_a_stopped_subscriber_leaves_its_topics(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[tuple[str, int, float]] = []
    tree = Supervisor("root", [ChildSpec(Listener, args=(seen, "prices"), name="sup")])
    async with open_actor_system(check_messages=True) as system:
        plain = await system.spawn(Listener, seen, "prices", name="plain")
        system.subscribe(plain, "news")
        await system.spawn(tree)
        supervised = system.lookup("sup")
        assert system.subscribers("prices") == [plain, supervised]
        await plain.stop()
        assert system.subscribers("prices") == [supervised]
        assert system.subscribers("news") == []
        # A restart is not a death: the subscription belongs to the ref and stays.
        await supervised.tell(Crash())
        await trio.sleep(1)
        assert supervised.statistics().restarts == 1
        assert system.subscribers("prices") == [supervised]
        assert await system.publish("prices", Price(7)) == 1
        await trio.sleep(1)
        await system.terminate_child("root", "sup")
        assert system.subscribers("prices") == []
        system.subscribe(plain, "prices")  # a stopped actor is not added
        assert system.subscribers("prices") == []
        assert await system.publish("prices", Price(8)) == 0
    assert [(name, value) for name, value, _ in seen] == [("sup", 7)]


async def test_each_subscribers_overflow_policy_applies_to_its_copy(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[tuple[str, int, float]] = []
    async with open_actor_system(check_messages=True) as system:
        fast = await system.spawn(Listener, seen, name="fast")
        newest = await system.spawn(
            Stuck, seen, name="newest", overflow=Overflow.DROP_NEWEST, mailbox_capacity=1
        )
        failing = await system.spawn(Stuck, seen, name="fail", overflow=Overflow.FAIL)
        for ref in (fast, newest, failing):
            system.subscribe(ref, "prices")
        # The first price is taken (and held 100 s) by the slow ones, the second fills them.
        assert await system.publish("prices", Price(1)) == 3
        await trio.sleep(1)
        assert await system.publish("prices", Price(2)) == 3
        assert await system.publish("prices", Price(3)) == 1  # only fast has room
        assert trio.current_time() == pytest.approx(1.0)  # nobody waited
        reasons = {(d.target, d.reason) for d in system.dead_letters}
        assert reasons == {
            ("/newest", DeadLetterReason.DROPPED_NEWEST),
            ("/fail", DeadLetterReason.PUBLISH_DROPPED),
        }
        await trio.sleep(300)
    assert sorted((n, v) for n, v, _ in seen if n == "fast") == [
        ("fast", 1),
        ("fast", 2),
        ("fast", 3),
    ]


async def test_a_full_block_subscriber_holds_the_publisher_back_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[tuple[str, int, float]] = []
    async with open_actor_system(check_messages=True) as system:
        fast = await system.spawn(Listener, seen, name="fast")
        stuck = await system.spawn(Stuck, seen, name="stuck")  # BLOCK, capacity 1, 100 s each
        system.subscribe(fast, "prices")
        system.subscribe(stuck, "prices")
        assert await system.publish("prices", Price(1)) == 2  # stuck takes it and sleeps
        await trio.sleep(0.5)
        assert await system.publish("prices", Price(2)) == 2  # fills stuck's mailbox
        # Stuck is full: the publisher waits for it, 5 s at most; fast had it at once.
        started = trio.current_time()
        assert await system.publish("prices", Price(3)) == 1
        assert trio.current_time() - started == pytest.approx(5.0)
        # Lagging now: later publishes do not wait for it while it is full.
        assert await system.publish("prices", Price(4)) == 1
        assert trio.current_time() - started == pytest.approx(5.0)
        dropped = [d for d in system.dead_letters if d.reason is DeadLetterReason.PUBLISH_DROPPED]
        assert [(d.target, d.message) for d in dropped] == [
            ("/stuck", Price(3)),
            ("/stuck", Price(4)),
        ]
        # Once it has room again, it gets messages again (and may hold the publisher again).
        await trio.sleep(200)
        assert await system.publish("prices", Price(5)) == 2
        # With room freed while the publisher waits, the publish just waits for it.
        assert await system.publish("prices", Price(6)) == 2
        waited_from = trio.current_time()
        assert await system.publish("prices", Price(7), timeout=None) == 2
        assert trio.current_time() - waited_from == pytest.approx(100.0)
        await trio.sleep(500)
    fast_seen = [(v, t) for n, v, t in seen if n == "fast"]
    assert [v for v, _ in fast_seen] == [1, 2, 3, 4, 5, 6, 7]
    assert fast_seen[2][1] == pytest.approx(0.5)  # not held back by stuck
    assert [v for n, v, _ in seen if n == "stuck"] == [1, 2, 5, 6, 7]


async def test_bad_topics_and_refs_are_refused(autojump_clock: trio.testing.MockClock) -> None:
    async with open_actor_system() as system:
        ref = await system.spawn(Listener, [])
        with pytest.raises(ValueError, match="non-empty"):
            system.subscribe(ref, "")
        with pytest.raises(TypeError, match="str"):
            system.subscribe(ref, 3)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="ActorRef"):
            system.subscribe("listener", "t")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="timeout"):
            await system.publish("t", Price(1), timeout=-1)
        async with open_actor_system() as other:
            with pytest.raises(TypeError, match="this actor system"):
                other.subscribe(ref, "t")
            assert other.subscribers("t") == []
