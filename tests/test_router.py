"""Routers: one ref in front of supervised routees, routing, backpressure, trees, restarts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs
import pytest
import trio
import trio.testing
from hypothesis import example, given, settings
from hypothesis import strategies as st
from supervision_support import Crash, Journal, Worker
from trio.testing import MockClock, wait_all_tasks_blocked

import triactor
from triactor import (
    Actor,
    ActorStopped,
    ChildSpec,
    DeadLetterReason,
    Overflow,
    RestartIntensityExceeded,
    Router,
    RouterRef,
    Routing,
    Supervisor,
    handler,
    open_actor_system,
)
from triactor.launcher import render_tree


@attrs.frozen
class Job:
    number: int


@attrs.frozen
class Fail:
    """Makes a Recorder raise ValueError."""


class Recorder(Actor):
    """Records (its name, incarnation, job number) for every job; fails on Fail."""

    mailbox_capacity = 16

    def __init__(self, seen: list[tuple[str, int, int]], incarnations: dict[str, int]) -> None:
        self.seen = seen
        incarnations[self.name] = incarnations.get(self.name, 0) + 1
        self.incarnation = incarnations[self.name]

    @handler
    async def job(self, msg: Job) -> str:
        self.seen.append((self.name, self.incarnation, msg.number))
        return self.name

    @handler
    async def fail(self, msg: Fail) -> None:
        raise ValueError(f"{self.name} failed on purpose")


class Gated(Actor):
    """Handles a job only when its gate (a semaphore named after the routee) is released."""

    mailbox_capacity = 2

    def __init__(self, gates: dict[str, trio.Semaphore], done: list[tuple[str, int]]) -> None:
        self.gate = gates[self.name]
        self.done = done

    @handler
    async def job(self, msg: Job) -> None:
        await self.gate.acquire()
        self.done.append((self.name, msg.number))


def gates_for(name: str, size: int) -> dict[str, trio.Semaphore]:
    return {f"{name}-{i}": trio.Semaphore(0) for i in range(size)}


def open_gates(gates: dict[str, trio.Semaphore], times: int) -> None:
    """Let each gated routee handle ``times`` more jobs."""
    for gate in gates.values():
        for _ in range(times):
            gate.release()


def run_mock(fn: Callable[[], Awaitable[None]]) -> None:
    """Run ``fn`` in a fresh trio.run on an autojumping mock clock; fail on deadlock."""

    async def guarded() -> None:
        with trio.fail_after(3600):
            await fn()

    trio.run(guarded, clock=MockClock(autojump_threshold=0))


# -- spreading messages -----------------------------------------------------------------------


async def test_round_robin_spreads_1000_messages_exactly(system: triactor.ActorSystem) -> None:
    seen: list[tuple[str, int, int]] = []
    router = Router("pool", Recorder, 4, routing=Routing.ROUND_ROBIN, args=(seen, {}))
    pool = await system.spawn(router)
    for number in range(1000):
        await pool.tell(Job(number))  # waits whenever the routee whose turn it is is full
    await system.shutdown()  # drains every routee
    assert len(seen) == 1000
    for index in range(4):
        mine = [number for name, _, number in seen if name == f"pool-{index}"]
        assert mine == list(range(index, 1000, 4))  # exact turns, and FIFO per routee


async def test_least_busy_spreads_1000_messages_by_speed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class Slow(Actor):
        mailbox_capacity = 8

        def __init__(self, done: list[str]) -> None:
            self.done = done
            self.cost = 0.001 * (1 + int(self.name.rsplit("-", 1)[1]))  # pool-0 is fastest

        @handler
        async def job(self, msg: Job) -> None:
            await trio.sleep(self.cost)
            self.done.append(self.name)

    done: list[str] = []
    async with open_actor_system() as system:
        pool = await system.spawn(Router("pool", Slow, 4, args=(done,)))
        for number in range(1000):
            await pool.tell(Job(number))
    counts = [done.count(f"pool-{i}") for i in range(4)]
    assert sum(counts) == 1000
    assert counts == sorted(counts, reverse=True)  # the faster a routee, the more it gets
    assert counts[3] > 0
    # Round robin would give each 250 and take 250 x 4 ms; least busy keeps all four busy.
    assert trio.current_time() < 250 * 0.004


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-2, 2), min_size=1, max_size=60))
# A full idle routee against a busy one with room: equal if queued and busy counted alike.
@example([-1, 0, -1, -2, -1, 0, -2, -2, -1])
def test_least_busy_never_picks_a_full_routee_while_another_has_room(ops: list[int]) -> None:
    """-1 sends a job with try_tell and lets the routees run; -2 sends one without letting
    them run (queued but not yet taken); j >= 0 lets routee j finish its current job."""

    async def main() -> None:
        gates = gates_for("pool", 3)
        done: list[tuple[str, int]] = []
        accepted = 0
        async with open_actor_system() as system:
            pool = await system.spawn(Router("pool", Gated, 3, args=(gates, done)))
            assert isinstance(pool, RouterRef)
            for number, op in enumerate(ops):
                stats = pool.routee_statistics()
                if op >= 0:
                    if stats[op].current_message_type is not None:
                        gates[f"pool-{op}"].release()
                    await wait_all_tasks_blocked()
                    continue
                depths = [s.mailbox.depth for s in stats]
                busy = [s.current_message_type is not None for s in stats]
                queued = pool.try_tell(Job(number))
                after = [s.mailbox.depth for s in pool.routee_statistics()]
                grown = [i for i in range(3) if after[i] == depths[i] + 1]
                has_room = [d < 2 for d in depths]
                assert queued == any(has_room)
                if queued:
                    accepted += 1
                    (chosen,) = grown
                    assert has_room[chosen]
                    assert depths[chosen] == min(depths)  # the fewest queued messages
                    # On equal queues an idle routee wins over a busy one.
                    assert not busy[chosen] or all(
                        busy[i] for i in range(3) if depths[i] == depths[chosen]
                    )
                else:
                    assert after == depths
                if op == -1:
                    await wait_all_tasks_blocked()
            open_gates(gates, 100)
        assert len(done) == accepted

    run_mock(main)


# -- backpressure --------------------------------------------------------------------------------


@pytest.mark.parametrize("routing", list(Routing))
async def test_a_full_router_blocks_its_sender(
    autojump_clock: trio.testing.MockClock, routing: Routing
) -> None:
    gates = gates_for("pool", 2)
    done: list[tuple[str, int]] = []
    async with open_actor_system(check_messages=True) as system:
        pool = await system.spawn(Router("pool", Gated, 2, routing=routing, args=(gates, done)))
        # Each routee holds one job in its handler and two in its mailbox: six in all.
        for number in range(6):
            await pool.tell(Job(number))
            await wait_all_tasks_blocked()
        assert [s.mailbox.depth for s in pool.routee_statistics()] == [2, 2]
        assert not pool.try_tell(Job(99))

        sent = trio.Event()

        async def send_one_more() -> None:
            await pool.tell(Job(6))
            sent.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_one_more)
            await wait_all_tasks_blocked()
            assert not sent.is_set()  # the sender waits: backpressure
            assert pool.statistics().mailbox.senders_waiting == 1
            await trio.sleep(60)
            assert not sent.is_set()  # however long it takes
            open_gates(gates, 1)
            await sent.wait()
        open_gates(gates, 10)
    assert sorted(number for _, number in done) == list(range(7))
    assert system.dead_letters.count == 0


async def test_a_full_drop_newest_router_dead_letters(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gates = gates_for("pool", 2)
    async with open_actor_system() as system:
        pool = await system.spawn(
            Router("pool", Gated, 2, args=(gates, []), overflow=Overflow.DROP_NEWEST)
        )
        for number in range(7):
            await pool.tell(Job(number))
            await wait_all_tasks_blocked()
        (letter,) = list(system.dead_letters)
        assert letter.message == Job(6)
        assert letter.reason is DeadLetterReason.DROPPED_NEWEST
        open_gates(gates, 10)


# -- supervision ---------------------------------------------------------------------------------


async def test_a_crashing_routee_is_restarted_and_its_queue_kept(
    system: triactor.ActorSystem,
) -> None:
    seen: list[tuple[str, int, int]] = []
    incarnations: dict[str, int] = {}
    router = Router("pool", Recorder, 2, routing=Routing.ROUND_ROBIN, args=(seen, incarnations))
    pool = await system.spawn(router)
    # tell does not yield while there is room: all six are queued before pool-0 handles any.
    await pool.tell(Fail())  # pool-0
    for number in range(1, 6):  # 1, 3, 5 to pool-1; 2, 4 to pool-0, behind the crash
        await pool.tell(Job(number))
    await trio.testing.wait_all_tasks_blocked()
    assert [(name, inc, n) for name, inc, n in seen if name == "pool-0"] == [
        ("pool-0", 2, 2),
        ("pool-0", 2, 4),
    ]
    assert incarnations == {"pool-0": 2, "pool-1": 1}
    assert isinstance(pool, RouterRef)
    assert [s.restarts for s in pool.routee_statistics()] == [1, 0]
    assert pool.statistics().restarts == 1
    (letter,) = list(system.dead_letters)
    assert (letter.target, letter.message) == ("/pool/pool-0", Fail())
    assert letter.reason is DeadLetterReason.CRASHED
    assert pool.is_alive


async def test_an_ask_gets_the_routees_reply_or_error(system: triactor.ActorSystem) -> None:
    pool = await system.spawn(Router("pool", Recorder, 2, args=([], {})))
    assert {await pool.ask(Job(n)) for n in range(4)} == {"pool-0", "pool-1"}
    with pytest.raises(ValueError, match="failed on purpose") as caught:
        await pool.ask(Fail())
    assert any("raised in actor '/pool/pool-" in note for note in caught.value.__notes__)


async def test_routers_inside_trees_start_and_stop_in_order() -> None:
    journal = Journal()
    tree = Supervisor(
        "root",
        [
            ChildSpec(Worker, args=(journal,), name="first"),
            Router("pool", Worker, 3, args=(journal,)),
            ChildSpec(Worker, args=(journal,), name="last"),
        ],
    )
    async with open_actor_system() as system:
        await system.spawn(tree)
        assert journal.of("start") == ["first", "pool-0", "pool-1", "pool-2", "last"]
        pool = system.lookup("pool")
        assert isinstance(pool, RouterRef)
        assert pool.path == "/root/pool"
        assert [r.path for r in pool.routees] == [f"/root/pool/pool-{i}" for i in range(3)]
        counts = await system.count_children("root")
        assert (counts.specs, counts.supervisors, counts.workers) == (3, 1, 2)
        assert [c.name for c in await system.which_children(pool)] == [
            "pool-0",
            "pool-1",
            "pool-2",
        ]
    assert journal.of("stop") == ["last", "pool-2", "pool-1", "pool-0", "first"]
    assert system.statistics().actors == 0


async def test_a_router_that_gives_up_is_restarted_by_its_parent_with_the_same_ref(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    tree = Supervisor("root", [Router("pool", Worker, 2, args=(journal,), max_restarts=0)])
    async with open_actor_system() as system:
        await system.spawn(tree)
        pool = system.lookup("pool")
        await pool.tell(Crash())  # pool-0 crashes: over the router's budget of 0 restarts
        await wait_all_tasks_blocked()
        assert journal.of("start") == ["pool-0", "pool-1", "pool-0", "pool-1"]
        assert journal.of("stop") == ["pool-0", "pool-1"]  # the crash, then the give-up
        assert system.lookup("pool") is pool
        children = await system.which_children("root")
        assert children[0].restarts == 1
        assert isinstance(pool, RouterRef)
        assert pool.is_alive and all(r.is_alive for r in pool.routees)


async def test_a_restarted_router_routes_to_a_routee_it_had_lost(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[tuple[str, int, int]] = []
    router = Router(
        "pool", Recorder, 3, routing=Routing.ROUND_ROBIN, args=(seen, {}), max_restarts=0
    )
    async with open_actor_system() as system:
        await system.spawn(Supervisor("root", [router]))
        pool = system.lookup("pool")
        await system.terminate_child(pool, "pool-1")  # stopped for good: skipped from now on
        assert {await pool.ask(Job(n)) for n in range(4)} == {"pool-0", "pool-2"}
        await pool.tell(Fail())  # over the router's budget: its parent restarts it
        await wait_all_tasks_blocked()
        assert (await system.which_children("root"))[0].restarts == 1
        # The restarted router starts from its specs: pool-1 is back, with a new cell.
        assert {await pool.ask(Job(n)) for n in range(6)} == {"pool-0", "pool-1", "pool-2"}
        assert system.lookup("pool") is pool


async def test_a_router_restarted_too_often_escalates(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with pytest.raises(RestartIntensityExceeded):
        async with open_actor_system() as system:
            pool = await system.spawn(Router("pool", Worker, 2, args=(Journal(),), max_restarts=0))
            await pool.tell(Crash())
            await trio.sleep_forever()


async def test_messages_sent_before_the_router_starts_wait_for_their_routee() -> None:
    @attrs.frozen
    class Start:
        pass

    class Producer(Actor):
        async def on_start(self) -> None:
            # The router is the next sibling: registered, not started yet.
            pool = self.system.lookup("pool")
            for number in range(6):
                await pool.tell(Job(number))

    seen: list[tuple[str, int, int]] = []
    tree = Supervisor(
        "root",
        [
            ChildSpec(Producer, name="producer"),
            Router("pool", Recorder, 3, routing=Routing.ROUND_ROBIN, args=(seen, {})),
        ],
    )
    async with open_actor_system() as system:
        await system.spawn(tree)
        await wait_all_tasks_blocked()
    assert sorted(n for _, _, n in seen) == list(range(6))
    assert system.dead_letters.count == 0


async def test_a_stopped_router_dead_letters_tells_and_refuses_asks(
    system: triactor.ActorSystem,
) -> None:
    pool = await system.spawn(Router("pool", Recorder, 2, args=([], {})))
    await pool.stop()
    assert not pool.is_alive
    assert not any(r.is_alive for r in pool.routees)  # type: ignore[attr-defined]
    await pool.tell(Job(1))
    assert not pool.try_tell(Job(2))
    with pytest.raises(ActorStopped, match="/pool"):
        await pool.ask(Job(3))
    letters = list(system.dead_letters)
    assert [(d.target, d.message) for d in letters] == [("/pool", Job(1)), ("/pool", Job(2))]
    assert pool.statistics().mailbox.closed


async def test_round_robin_skips_a_routee_stopped_for_good(system: triactor.ActorSystem) -> None:
    seen: list[tuple[str, int, int]] = []
    pool = await system.spawn(
        Router("pool", Recorder, 3, routing=Routing.ROUND_ROBIN, args=(seen, {}))
    )
    await system.terminate_child(pool, "pool-1")
    for number in range(4):
        await pool.ask(Job(number))
    assert [name for name, _, _ in seen] == ["pool-0", "pool-2", "pool-0", "pool-2"]


async def test_least_busy_skips_a_routee_stopped_for_good(system: triactor.ActorSystem) -> None:
    seen: list[tuple[str, int, int]] = []
    pool = await system.spawn(Router("pool", Recorder, 3, args=(seen, {})))
    await system.terminate_child(pool, "pool-1")  # its empty, closed mailbox must not attract
    for number in range(6):
        await pool.tell(Job(number))
    await wait_all_tasks_blocked()
    assert sorted(name for name, _, _ in seen) == ["pool-0"] * 3 + ["pool-2"] * 3
    assert system.dead_letters.count == 0


# -- the spec and the ref -------------------------------------------------------------------


def test_router_spec_validation() -> None:
    with pytest.raises(TypeError, match="Actor subclass"):
        Router("pool", object, 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="size must be at least 1"):
        Router("pool", Recorder, 0)
    with pytest.raises(TypeError, match="size must be an int"):
        Router("pool", Recorder, 2.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"triactor\.Routing"):
        Router("pool", Recorder, 2, routing="least_busy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mailbox_capacity"):
        Router("pool", Recorder, 2, mailbox_capacity=0)
    with pytest.raises(ValueError, match="name"):
        Router("a/b", Recorder, 2)
    router = Router("pool", Recorder, 2)
    assert repr(router) == "Router('pool', Recorder, size=2, routing=LEAST_BUSY)"
    tree = Supervisor("root", [router])  # accepted as a child
    assert tree.children == (router,)


async def test_a_taken_routee_name_leaves_nothing_behind(system: triactor.ActorSystem) -> None:
    await system.spawn(Recorder, [], {}, name="pool-1")
    with pytest.raises(ValueError, match="pool-1"):
        await system.spawn(Router("pool", Recorder, 2, args=([], {})))
    with pytest.raises(triactor.ActorNotFound):
        system.lookup("pool")
    with pytest.raises(triactor.ActorNotFound):
        system.lookup("pool-0")
    with pytest.raises(ValueError, match="pool-1"):
        await system.spawn(Supervisor("root", [Router("pool", Recorder, 2, args=([], {}))]))
    with pytest.raises(triactor.ActorNotFound):
        system.lookup("pool-0")
    assert system.statistics().actors == 1


async def test_router_ref_statistics_and_repr(system: triactor.ActorSystem) -> None:
    seen: list[tuple[str, int, int]] = []
    pool = await system.spawn(
        Router("pool", Recorder, 2, routing=Routing.ROUND_ROBIN, args=(seen, {}))
    )
    assert isinstance(pool, RouterRef)
    assert system.lookup("pool") is pool
    for number in range(5):
        await pool.tell(Job(number))
    assert repr(pool) == "<RouterRef /pool idle, round_robin over 2 routees, 5/32 queued>"
    stats = pool.statistics()
    assert (stats.path, stats.mailbox.depth, stats.mailbox.capacity) == ("/pool", 5, 32)
    await wait_all_tasks_blocked()
    assert [s.processed for s in pool.routee_statistics()] == [3, 2]
    assert pool.statistics().processed == 5
    assert [s.path for s in pool.routee_statistics()] == ["/pool/pool-0", "/pool/pool-1"]


def test_the_tree_view_draws_a_router_as_one_line() -> None:
    tree = Supervisor("root", [Router("pool", Recorder, 4, args=([], {}), max_restarts=7)])
    assert render_tree(tree, ascii_only=True).splitlines() == [
        "root  (supervisor one_for_one, max 3 restarts in 5 s)",
        "`-- pool  router least_busy over 4 x Recorder (permanent, shutdown 5 s, mailbox 16 "
        "block); max 7 restarts in 5 s, permanent",
    ]
