"""Message conservation with sync handlers: each message is handled XOR dead-lettered.

Plain ``def`` handlers run in worker threads that no stop can cancel. Under stop deadlines
(one_for_all restarts) and ``system.abort()``, each message must still end exactly one way:
handled (its handler returned) or dead-lettered (never handled, or crashed), never both, never
neither; and an actor never runs two handlers at once, nor ``on_stop`` beside a handler.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import attrs
import pytest
import trio
import trio.testing

from triactor import (
    Actor,
    ActorRef,
    ActorSystem,
    ChildSpec,
    Strategy,
    Supervisor,
    handler,
    open_actor_system,
)

THREADS = 4


@attrs.frozen
class Job:
    n: int


@attrs.frozen
class Crash:
    pass


class Ledger:
    """What the handlers did, recorded from worker threads and from the loop."""

    def __init__(self, seed: int) -> None:
        self.lock = threading.Lock()
        self.handled: Counter[int] = Counter()
        self.in_flight: Counter[str] = Counter()
        self.violations: list[str] = []
        self.seed = seed

    def enter(self, actor: str, n: int) -> None:
        with self.lock:
            if self.in_flight[actor]:
                self.violations.append(f"{actor}: Job({n}) started beside another handler")
            self.in_flight[actor] += 1

    def leave(self, actor: str, n: int, handled: bool) -> None:
        with self.lock:
            self.in_flight[actor] -= 1
            if handled:
                self.handled[n] += 1

    def mark_handled(self, n: int) -> None:
        with self.lock:
            self.handled[n] += 1

    def stopping(self, actor: str) -> None:
        with self.lock:
            if self.in_flight[actor]:
                self.violations.append(f"{actor}: on_stop ran beside a handler")

    def work_for(self, n: int) -> tuple[float, bool]:
        """The real seconds Job(n) blocks its thread, and whether it fails.

        Jobs of negative numbers (see :func:`handle_one_each`) take no time and never fail.
        """
        if n < 0:
            return 0.0, False
        rng = random.Random(self.seed * 1_000_003 + n)
        return rng.choice((0.0, 0.0, 0.0002, 0.001, 0.003)), rng.random() < 0.02

    def failing(self, sent: set[int]) -> int:
        """How many of the jobs ``sent`` fail: each must end dead-lettered, handled or not."""
        return sum(self.work_for(n)[1] for n in sent)


class SyncWorker(Actor):
    """A plain def handler: blocks its worker thread a little, sometimes fails."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    async def on_stop(self) -> None:
        self.ledger.stopping(self.name)

    @handler
    def job(self, msg: Job) -> int:
        self.ledger.enter(self.name, msg.n)
        seconds, fails = self.ledger.work_for(msg.n)
        try:
            time.sleep(seconds)  # blocking work, as in a sync HTTP call
            if fails:
                raise ValueError(f"job {msg.n} failed")
        except BaseException:
            self.ledger.leave(self.name, msg.n, handled=False)
            raise
        self.ledger.leave(self.name, msg.n, handled=True)
        return msg.n


class AsyncWorker(Actor):
    """An async handler, for comparison: cancellation cuts it exactly."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    @handler
    async def job(self, msg: Job) -> int:
        seconds, fails = self.ledger.work_for(msg.n)
        await trio.sleep(seconds)
        if fails:
            raise ValueError(f"job {msg.n} failed")
        self.ledger.mark_handled(msg.n)
        return msg.n


class Crasher(Actor):
    @handler
    async def crash(self, msg: Crash) -> None:
        raise RuntimeError("crash on request")


async def handle_one_each(refs: list[ActorRef], ledger: Ledger, sent: set[int]) -> None:
    """Before the traffic, ask each actor one job (of a negative number): it is handled.

    How many of the traffic's jobs are handled rather than dead-lettered depends on how fast
    the worker threads run beside the loop (under an autojump clock a stop deadline passes as
    soon as the loop waits for them): on a busy machine, far fewer. These jobs make sure that
    every run has handled ones, whatever the machine does.
    """
    for k, ref in enumerate(refs, start=1):
        sent.add(-k)
        assert await ref.ask(Job(-k)) == -k
    assert all(ledger.handled[-k] == 1 for k in range(1, len(refs) + 1))


async def quiesce(system: ActorSystem) -> None:
    """Wait until no handler thread runs and every late report has been accounted.

    A worker thread gives its limiter token back after it has reported to its actor (both go
    through the same FIFO queue), so holding every token means all of them are done.
    """
    tokens = [object() for _ in range(THREADS)]
    for token in tokens:
        await system.thread_limiter.acquire_on_behalf_of(token)
    for token in tokens:
        system.thread_limiter.release_on_behalf_of(token)


def check_conservation(system: ActorSystem, ledger: Ledger, sent: set[int]) -> tuple[int, int]:
    dead = Counter(
        letter.message.n for letter in system.dead_letters if isinstance(letter.message, Job)
    )
    assert system.dead_letters.count == len(system.dead_letters), "raise dead_letters_kept"
    handled = set(ledger.handled)
    twice = {n for n, k in ledger.handled.items() if k > 1} | {n for n, k in dead.items() if k > 1}
    assert not twice, f"handled or dead-lettered twice: {sorted(twice)[:20]}"
    both = handled & set(dead)
    assert not both, f"both handled and dead-lettered: {sorted(both)[:20]}"
    lost = sent - handled - set(dead)
    assert not lost, f"neither handled nor dead-lettered: {sorted(lost)[:20]}"
    assert not ledger.violations, ledger.violations[:10]
    return len(handled), len(dead)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_sync_handlers_under_stop_deadlines_conserve_messages(
    autojump_clock: trio.testing.MockClock, seed: int
) -> None:
    """one_for_all restarts stop sync handlers by a short deadline, over and over."""
    ledger = Ledger(seed)
    rng = random.Random(seed)
    names = ["s1", "s2", "s3", "a1"]
    tree = Supervisor(
        "root",
        [
            *(
                ChildSpec(SyncWorker, args=(ledger,), name=name, shutdown_timeout=0.002)
                for name in names[:3]
            ),
            ChildSpec(AsyncWorker, args=(ledger,), name="a1", shutdown_timeout=0.002),
            ChildSpec(Crasher, name="crasher"),
        ],
        strategy=Strategy.ONE_FOR_ALL,
        max_restarts=10_000,
        within=1.0,
    )
    sent: set[int] = set()
    async with open_actor_system(thread_limit=THREADS, dead_letters_kept=100_000) as system:
        await system.spawn(tree)
        refs: list[ActorRef] = [system.lookup(name) for name in names]
        await handle_one_each(refs, ledger, sent)
        for n in range(1500):
            await rng.choice(refs).tell(Job(n))
            sent.add(n)
            if rng.random() < 0.02:
                with pytest.raises(RuntimeError):
                    await system.lookup("crasher").ask(Crash())
            if rng.random() < 0.1:
                await trio.sleep(0.001)
    await quiesce(system)
    handled, dead = check_conservation(system, ledger, sent)
    # Both outcomes, however fast the threads ran: the jobs of handle_one_each were handled,
    # and every failing job (the seed makes enough of them) is a dead letter.
    assert handled >= len(refs) and dead >= ledger.failing(sent) > 10, (handled, dead)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_sync_handlers_under_abort_conserve_messages(
    autojump_clock: trio.testing.MockClock, seed: int
) -> None:
    """``system.abort()`` cancels every actor mid-traffic, sync handlers in flight included."""
    ledger = Ledger(seed)
    rng = random.Random(seed)
    sent: set[int] = set()
    names = [f"s{k}" for k in range(6)] + ["a1", "a2"]
    tree = Supervisor(
        "root",
        [
            ChildSpec(SyncWorker if name[0] == "s" else AsyncWorker, args=(ledger,), name=name)
            for name in names
        ],
        max_restarts=10_000,
        within=1.0,
    )
    async with open_actor_system(thread_limit=THREADS, dead_letters_kept=100_000) as system:
        await system.spawn(tree)
        refs = [system.lookup(name) for name in names]
        await handle_one_each(refs, ledger, sent)
        abort_at = rng.randrange(1000, 3000)
        for n in range(4000):
            if n == abort_at:
                system.abort()
            try:
                await rng.choice(refs).tell(Job(n))
            except trio.Cancelled:
                break
            sent.add(n)
            if rng.random() < 0.05:
                await trio.sleep(0.0005)
        await trio.sleep_forever()  # the abort cancels this
    await quiesce(system)
    handled, dead = check_conservation(system, ledger, sent)
    # Both outcomes, however fast the threads ran (see the test above).
    assert handled >= len(refs) and dead >= ledger.failing(sent) > 10, (handled, dead)
