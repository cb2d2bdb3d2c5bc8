"""Failures as users expect them (issue 11), each test failing on the code before the fix:

1. ``resume_on``: chosen errors go back to the asker (or dead letters) and the state is kept.
2. A crash while draining at shutdown is restarted, logged, and the drain goes on; a lossy
   stop is counted and not clean.
3. ``ref.stop()`` is bounded by ``shutdown_timeout``.
4. A restarted supervisor starts from its static specs, without its dynamic children.
5. ``system.watch`` reports the real reason for supervised children.
6. ``start_child`` with something that is not a spec raises a clear ``TypeError``.
7. Start failures are spaced by backoff, and their tracebacks are not chained.
8. A request whose asker gave up is not handled: it is dead-lettered as expired.
"""

from __future__ import annotations

import functools
from typing import ClassVar

import attrs
import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from supervision_support import Crash, Journal, Ping, Worker, messages_of

import triactor
from triactor import (
    Actor,
    Backoff,
    ChildSpec,
    DeadLetterReason,
    Restart,
    RestartIntensityExceeded,
    Supervisor,
    handler,
    open_actor_system,
)
from triactor.diagnostics import render_metrics
from triactor.launcher import RunningTree, RunResult, run_tree
from triactor.launcher._cli import exit_code


@attrs.frozen
class Get:
    key: str


@attrs.frozen
class Hits:
    pass


@attrs.frozen
class Corrupt:
    pass


class Cache(Actor):
    """Counts hits; an unknown key is the caller's mistake, not a reason to lose the count."""

    resume_on = (KeyError,)

    def __init__(self) -> None:
        self.data = {"a": 1}
        self.hits = 0

    @handler
    async def get(self, msg: Get) -> int:
        value = self.data[msg.key]
        self.hits += 1
        return value

    @handler
    async def count(self, msg: Hits) -> int:
        return self.hits

    @handler
    async def corrupt(self, msg: Corrupt) -> None:
        raise RuntimeError("state is broken")


class PlainCache(Actor):
    def __init__(self) -> None:
        self.hits = 0

    @handler
    async def get(self, msg: Get) -> int:
        value = {"a": 1}[msg.key]
        self.hits += 1
        return value

    @handler
    async def count(self, msg: Hits) -> int:
        return self.hits


# -- 1: resume_on --------------------------------------------------------------------------------


async def test_resumed_errors_go_to_the_asker_and_keep_the_state(
    autojump_clock: trio.testing.MockClock,
) -> None:
    tree = Supervisor(
        "root",
        [ChildSpec(Cache, name="cache"), ChildSpec(PlainCache, name="other")],
        max_restarts=3,
        within=5,
    )
    async with open_actor_system(check_messages=True) as system:
        await system.spawn(tree)
        cache = system.lookup("cache")
        for _ in range(40):
            assert await cache.ask(Get("a")) == 1
        # Ten bad requests within a second: far more than the restart budget.
        for _ in range(10):
            with pytest.raises(KeyError) as caught:
                await cache.ask(Get("nobody"))
            assert "raised in actor '/root/cache' while handling Get" in caught.value.__notes__
        await cache.tell(Get("nobody"))  # no asker: a dead letter carrying the error
        assert await cache.ask(Hits()) == 40
        stats = cache.statistics()
        assert (stats.restarts, stats.failures, stats.processed) == (0, 11, 41)
        assert 'triactor_messages_failed_total{actor="/root/cache"} 11' in render_metrics(system)
        [letter] = system.dead_letters
        assert letter.reason is DeadLetterReason.HANDLER_ERROR
        assert letter.message == Get("nobody") and isinstance(letter.error, KeyError)
        assert system.lookup("other").is_alive and system.lookup("root").is_alive
        # Anything else still crashes, and the restart loses the state.
        with pytest.raises(RuntimeError):
            await cache.ask(Corrupt())
        assert await cache.ask(Hits()) == 0
        assert cache.statistics().restarts == 1


async def test_resume_on_is_overridable_per_spawn_and_child_spec(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_actor_system() as system:
        plain = await system.spawn(PlainCache, name="plain", resume_on=(KeyError,))
        assert await plain.ask(Get("a")) == 1
        with pytest.raises(KeyError):
            await plain.ask(Get("b"))
        assert await plain.ask(Hits()) == 1
        tree = Supervisor("root", [ChildSpec(Cache, name="strict", resume_on=())])
        await system.spawn(tree)
        strict = system.lookup("strict")
        assert await strict.ask(Get("a")) == 1
        with pytest.raises(KeyError):
            await strict.ask(Get("b"))
        assert await strict.ask(Hits()) == 0  # crashed and restarted: the spec said so
        assert strict.statistics().restarts == 1


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ((ValueError, "x"), TypeError),
        ((KeyboardInterrupt,), TypeError),
        ((trio.Cancelled,), TypeError),
        ("ValueError", TypeError),
    ],
)
async def test_resume_on_is_validated_where_it_enters(
    value: object, error: type[Exception]
) -> None:
    with pytest.raises(error, match="resume_on"):

        class Bad(Actor):
            resume_on = value  # type: ignore[assignment]

    with pytest.raises(error, match="resume_on"):
        ChildSpec(PlainCache, resume_on=value)  # type: ignore[arg-type]
    async with open_actor_system() as system:
        with pytest.raises(error, match="resume_on"):
            await system.spawn(PlainCache, resume_on=value)  # type: ignore[arg-type]


@settings(max_examples=50, deadline=None)
@given(
    sends=st.lists(
        st.tuples(st.sampled_from(["a", "missing"]), st.booleans(), st.booleans()), max_size=30
    )
)
def test_resumed_errors_never_cost_state_or_restarts(sends: list[tuple[str, bool, bool]]) -> None:
    """Whatever mix of good and bad requests, asked or told: the state counts every good one."""

    async def scenario() -> None:
        async with open_actor_system() as system:
            await system.spawn(Supervisor("root", [ChildSpec(Cache, name="cache")], max_restarts=0))
            cache = system.lookup("cache")
            for key, ask, corrupt_first in sends:
                if corrupt_first:
                    await cache.tell(Get("missing"))
                if ask:
                    try:
                        await cache.ask(Get(key))
                    except KeyError:
                        assert key == "missing"
                else:
                    await cache.tell(Get(key))
            good = sum(key == "a" for key, _, _ in sends)
            bad = len(sends) - good + sum(corrupt for _, _, corrupt in sends)
            assert await cache.ask(Hits()) == good
            stats = cache.statistics()
            assert (stats.restarts, stats.failures, stats.processed) == (0, bad, good + 1)
            told_bad = bad - sum(key == "missing" and ask for key, ask, _ in sends)
            assert (
                system.dead_letters.count_by_reason().get(DeadLetterReason.HANDLER_ERROR, 0)
                == told_bad
            )

    trio.run(scenario, clock=trio.testing.MockClock(autojump_threshold=0))


# -- 2: a crash while draining at shutdown -------------------------------------------------------


@attrs.frozen
class Job:
    n: int


class Jobs(Actor):
    """Each job takes 0.1 s; job 5 raises."""

    shutdown_timeout = 100.0

    def __init__(self, done: list[int]) -> None:
        self.done = done

    @handler
    async def job(self, msg: Job) -> None:
        await trio.sleep(0.1)
        if msg.n == 5:
            raise ValueError("job 5 is malformed")
        self.done.append(msg.n)


async def start_tree(nursery: trio.Nursery, tree: Supervisor, **options: object) -> RunningTree:
    running: RunningTree = await nursery.start(
        functools.partial(run_tree, tree, handle_signals=False, **options)  # type: ignore[arg-type]
    )
    return running


async def test_a_crash_while_draining_restarts_the_child_and_the_drain_goes_on(
    autojump_clock: trio.testing.MockClock, log_records: list[dict[str, object]]
) -> None:
    done: list[int] = []
    tree = Supervisor("root", [ChildSpec(Jobs, args=(done,), name="jobs")])
    async with trio.open_nursery() as nursery:
        running = await start_tree(nursery, tree)
        jobs = running.system.lookup("jobs")
        for n in range(1, 21):
            await jobs.tell(Job(n))
        running.request_stop("test")
    assert done == [n for n in range(1, 21) if n != 5]
    [letter] = running.system.dead_letters
    assert (letter.message, letter.reason) == (Job(5), DeadLetterReason.CRASHED)
    errors = [r for r in log_records if getattr(r["level"], "name", None) == "ERROR"]
    assert len(errors) == 1 and errors[0]["exception"] is not None
    assert "child /root/jobs crashed: ValueError('job 5 is malformed')" in str(errors[0]["message"])
    result = running.result()
    assert result.clean and (result.dropped, result.cancelled) == (0, 0)
    assert exit_code(result) == 0


async def test_a_drain_that_exhausts_the_budget_gives_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class AlwaysFails(Jobs):
        @handler
        async def job(self, msg: Job) -> None:
            await trio.sleep(0.1)
            raise ValueError(f"job {msg.n} fails")

    done: list[int] = []
    tree = Supervisor("root", [ChildSpec(AlwaysFails, args=(done,), name="jobs")], max_restarts=2)
    with pytest.raises(ExceptionGroup) as caught:
        async with trio.open_nursery() as nursery:
            running = await start_tree(nursery, tree)
            jobs = running.system.lookup("jobs")
            for n in range(1, 21):
                await jobs.tell(Job(n))
            running.request_stop("test")
    assert caught.group_contains(RestartIntensityExceeded)
    by_reason = running.system.dead_letters.count_by_reason()
    assert by_reason == {DeadLetterReason.CRASHED: 3, DeadLetterReason.ACTOR_STOPPED: 17}


async def test_a_stop_that_drops_messages_is_counted_and_not_clean(
    autojump_clock: trio.testing.MockClock, log_records: list[dict[str, object]]
) -> None:
    done: list[int] = []
    tree = Supervisor("root", [ChildSpec(Jobs, args=(done,), name="jobs", shutdown_timeout=0.45)])
    async with trio.open_nursery() as nursery:
        running = await start_tree(nursery, tree)
        jobs = running.system.lookup("jobs")
        for n in range(10, 30):
            await jobs.tell(Job(n))
        running.request_stop("test")
    assert done == [10, 11, 12, 13]  # the fifth job was cut at the deadline
    result = running.result()
    assert (result.aborted_by, result.cancelled, result.dropped) == (None, 1, 15)
    assert not result.clean
    assert exit_code(result) == 3
    warnings = messages_of(log_records, "WARNING")
    assert any("15 queued messages" in text for text in warnings), warnings
    assert not any("stopped gracefully" in str(r["message"]) for r in log_records)


def test_exit_codes_of_a_lossy_shutdown() -> None:
    assert exit_code(RunResult("SIGINT", None, 0.1, dropped=3)) == 3
    assert exit_code(RunResult("SIGINT", None, 0.1, cancelled=1)) == 3
    assert exit_code(RunResult("SIGTERM", "deadline", 10.0)) == 3
    assert exit_code(RunResult("SIGINT", "SIGINT", 0.1, dropped=3)) == 130


# -- 3: ref.stop() is bounded ---------------------------------------------------------------------


class Stuck(Actor):
    shutdown_timeout = 2.0

    @handler
    async def hang(self, msg: Get) -> None:
        await trio.sleep_forever()


@pytest.mark.parametrize("supervised", [False, True])
async def test_ref_stop_is_bounded_by_the_shutdown_timeout(
    autojump_clock: trio.testing.MockClock, supervised: bool
) -> None:
    async with open_actor_system() as system:
        if supervised:
            tree = Supervisor("root", [ChildSpec(Stuck, name="stuck", restart=Restart.TRANSIENT)])
            await system.spawn(tree)
            stuck = system.lookup("stuck")
        else:
            stuck = await system.spawn(Stuck, name="stuck")
        await stuck.tell(Get("x"))
        await trio.sleep(0.1)
        started = trio.current_time()
        with trio.fail_after(60):
            await stuck.stop()
        assert trio.current_time() - started == pytest.approx(2.0)
        notice = await system.watch(stuck)
        assert notice.reason == "cancelled"


# -- 4: a restarted supervisor starts from its static specs --------------------------------------


async def test_a_restarted_supervisor_does_not_bring_back_dynamic_children(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    sub = Supervisor("sub", [ChildSpec(Worker, args=(journal,), name="static")], max_restarts=1)
    tree = Supervisor("root", [sub], max_restarts=3, within=60)
    async with open_actor_system() as system:
        await system.spawn(tree)
        dyn = await system.start_child("sub", ChildSpec(Worker, args=(journal,), name="dyn"))
        journal.fail_start.add("dyn")  # from now on it cannot start
        await dyn.tell(Crash())
        # sub restarts dyn, which fails to start: sub gives up; root restarts sub.
        await trio.sleep(1)
        assert system.lookup("root").is_alive
        children = await system.which_children("sub")
        assert [child.name for child in children] == ["static"]
        assert not dyn.is_alive
        assert journal.starts == {"static": 2, "dyn": 2}
        assert await system.lookup("static").ask(Ping()) == ("static", 2)


# -- 5: watch reports the real reason -----------------------------------------------------------


async def test_watch_reports_a_child_cancelled_at_its_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    tree = Supervisor("root", [ChildSpec(Stuck, name="stuck", shutdown_timeout=1.0)])
    async with open_actor_system() as system:
        root = await system.spawn(tree)
        stuck = system.lookup("stuck")
        await stuck.tell(Get("x"))
        await trio.sleep(0.1)
        await root.stop()
        notice = await system.watch(stuck)
    assert notice.reason == "cancelled"


async def test_watch_reports_a_child_that_crashed_before_its_supervisor_gave_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    tree = Supervisor("root", [ChildSpec(Worker, args=(journal,), name="w")], max_restarts=0)
    with pytest.raises(RestartIntensityExceeded):
        async with open_actor_system() as system:
            await system.spawn(tree)
            w = system.lookup("w")
            await w.tell(Crash())
            await trio.sleep_forever()
    notice = await system.watch(w)
    assert notice.reason == "crashed"
    assert notice.error is not None and "w crashed on purpose" in notice.error


# -- 6: start_child with something that is not a spec -------------------------------------------


async def test_start_child_rejects_what_is_not_a_spec(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_actor_system() as system:
        await system.spawn(Supervisor("root"))
        for bad in ("hej", PlainCache):
            with pytest.raises(TypeError, match="ChildSpec, Supervisor or Router"):
                await system.start_child("root", bad)
        assert await system.which_children("root") == []


# -- 7: start failures are backed off -----------------------------------------------------------


class Fragile(Actor):
    """Constructs fine once, then its constructor fails every time."""

    attempts: ClassVar[list[float]] = []

    def __init__(self) -> None:
        Fragile.attempts.append(trio.current_time())
        if len(Fragile.attempts) > 1:
            raise OSError(f"cannot connect (attempt {len(Fragile.attempts)})")

    @handler
    async def crash(self, msg: Crash) -> None:
        raise ValueError("crashed once")


@pytest.mark.parametrize("backoff", [Backoff(min=1.0, max=8.0, jitter=0), None])
async def test_a_constructor_that_keeps_failing_is_backed_off(
    autojump_clock: trio.testing.MockClock, backoff: Backoff | None
) -> None:
    Fragile.attempts = []
    tree = Supervisor(
        "root", [ChildSpec(Fragile, name="f", backoff=backoff)], max_restarts=5, within=3600
    )
    with pytest.raises(RestartIntensityExceeded) as caught:
        async with open_actor_system() as system:
            await system.spawn(tree)
            await system.lookup("f").tell(Crash())
            await trio.sleep_forever()
    gaps = [b - a for a, b in zip(Fragile.attempts[1:], Fragile.attempts[2:], strict=False)]
    assert len(Fragile.attempts) == 6  # the first start, then 5 restarts allowed
    if backoff is not None:
        assert gaps == pytest.approx([2.0, 4.0, 8.0, 8.0])  # 1.0 s before the first retry
    else:
        assert all(gap > 0 for gap in gaps)
        assert gaps == sorted(gaps)
    last = caught.value.last_error
    assert isinstance(last, OSError) and "attempt 6" in str(last)
    assert last.__context__ is None  # not chained onto the previous attempt's traceback


# -- 8: an ask whose asker gave up is not handled ---------------------------------------------


@attrs.frozen
class Sleep:
    seconds: float


class Service(Actor):
    def __init__(self, done: list[float]) -> None:
        self.done = done

    @handler
    async def sleep(self, msg: Sleep) -> float:
        await trio.sleep(msg.seconds)
        self.done.append(msg.seconds)
        return msg.seconds


@pytest.mark.parametrize("max_concurrency", [1, 2])
async def test_a_timed_out_ask_is_not_handled_later(
    autojump_clock: trio.testing.MockClock, max_concurrency: int
) -> None:
    done: list[float] = []
    async with open_actor_system(check_messages=True) as system:
        service = await system.spawn(Service, done, name="service", max_concurrency=max_concurrency)
        for _ in range(max_concurrency):
            await service.tell(Sleep(10))  # keeps the actor busy
        with pytest.raises(trio.TooSlowError):
            await service.ask(Sleep(0.5), timeout=1)
        assert await service.ask(Sleep(0.25)) == 0.25
    assert done == [10] * max_concurrency + [0.25]
    [letter] = system.dead_letters
    assert (letter.message, letter.reason) == (Sleep(0.5), DeadLetterReason.EXPIRED)
    assert triactor.DeadLetterReason.EXPIRED.value == "expired: the asker stopped waiting"


async def test_a_drain_restart_waits_its_backoff_within_the_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    done: list[int] = []
    spec = ChildSpec(
        Jobs,
        args=(done,),
        name="jobs",
        shutdown_timeout=1.0,
        backoff=Backoff(min=10.0, max=10.0, jitter=0),
    )
    async with trio.open_nursery() as nursery:
        running = await start_tree(nursery, Supervisor("root", [spec]))
        jobs = running.system.lookup("jobs")
        for n in range(1, 21):
            await jobs.tell(Job(n))
        started = trio.current_time()
        running.request_stop("test")
    assert trio.current_time() - started == pytest.approx(1.0)  # not the 10 s backoff
    assert done == [1, 2, 3, 4]
    result = running.result()
    assert (result.dropped, result.cancelled, result.clean) == (15, 0, False)
