"""Supervision: the reference scenarios of Erlang/OTP's and Akka's test suites, under MockClock."""

from __future__ import annotations

import math

import attrs
import pytest
import trio
import trio.testing
from supervision_support import Crash, Hang, Journal, Ping, StopSelf, Worker, messages_of

import triactor
from triactor import (
    ActorNotFound,
    Backoff,
    ChildSpec,
    ChildState,
    Restart,
    RestartIntensityExceeded,
    Strategy,
    Supervisor,
    handler,
    open_actor_system,
)


def specs(journal: Journal, *names: str, **options: object) -> list[ChildSpec]:
    return [ChildSpec(Worker, args=(journal,), name=name, **options) for name in names]  # type: ignore[arg-type]


async def crash_and_wait(system: object, name: str) -> None:
    """Crash a child, ping it (the next incarnation answers), let the supervisor settle."""
    ref = system.lookup(name)  # type: ignore[attr-defined]
    await ref.tell(Crash())
    await ref.ask(Ping())
    await trio.testing.wait_all_tasks_blocked()


# -- 1, 2: restart intensity ---------------------------------------------------------------------


async def test_intensity_exceeded_stops_children_in_reverse_and_escalates(
    autojump_clock: trio.testing.MockClock, log_records: list[dict[str, object]]
) -> None:
    journal = Journal()
    tree = Supervisor("root", specs(journal, "c1", "c2"), max_restarts=2, within=3600)
    with pytest.raises(RestartIntensityExceeded) as caught:
        async with open_actor_system() as system:
            await system.spawn(tree)
            await crash_and_wait(system, "c1")
            assert journal.starts == {"c1": 2, "c2": 1}  # c2 untouched
            await crash_and_wait(system, "c2")
            assert journal.starts == {"c1": 2, "c2": 2}
            journal.clear()
            await system.lookup("c1").tell(Crash())
            await trio.sleep_forever()  # the escalation cancels this block
    error = caught.value
    assert error.supervisor == "/root"
    assert error.child == "/root/c1"
    assert error.restarts == 3 and error.max_restarts == 2
    assert isinstance(error.__cause__, ValueError)
    assert "/root" in str(error) and "/root/c1" in str(error) and "ValueError" in str(error)
    # c1 stopped when it crashed; then the supervisor stopped the rest in reverse order.
    assert journal.of("stop") == ["c1", "c2"]
    assert journal.of("start") == []
    gave_up = [m for m in messages_of(log_records, "ERROR") if "gave up" in m]
    assert len(gave_up) == 1


async def test_spread_out_crashes_stay_within_budget(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    tree = Supervisor("root", specs(journal, "c1"), max_restarts=1, within=1)
    async with open_actor_system() as system:
        root = await system.spawn(tree)
        await crash_and_wait(system, "c1")
        for _ in range(3):
            await trio.sleep(2.1)
            await crash_and_wait(system, "c1")
        assert root.is_alive
        assert journal.starts["c1"] == 5


# -- 3: a restart that itself fails --------------------------------------------------------------


@pytest.mark.parametrize("strategy", list(Strategy))
async def test_failing_restart_counts_against_budget(
    autojump_clock: trio.testing.MockClock, strategy: Strategy
) -> None:
    journal = Journal()
    tree = Supervisor(
        "root", specs(journal, "c1", "healthy"), strategy=strategy, max_restarts=3, within=60
    )
    with pytest.raises(RestartIntensityExceeded) as caught:
        async with open_actor_system() as system:
            await system.spawn(tree)
            journal.fail_start.add("c1")
            await system.lookup("c1").tell(Crash())
            await trio.sleep_forever()
    # The crash and three failed restarts: the fourth restart would exceed max_restarts=3.
    assert journal.of("failed-start") == ["c1"] * 3
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert "healthy" in journal.of("stop")  # the healthy sibling went down with it


async def test_failing_restart_of_dynamic_child_counts_against_budget(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    tree = Supervisor("root", specs(journal, "static"), max_restarts=2, within=60)
    with pytest.raises(RestartIntensityExceeded) as caught:
        async with open_actor_system() as system:
            await system.spawn(tree)
            await system.start_child("root", ChildSpec(Worker, args=(journal,), name="dyn"))
            journal.fail_start.add("dyn")
            await system.lookup("dyn").tell(Crash())
            await trio.sleep_forever()
    assert caught.value.child == "/root/dyn"
    assert journal.of("failed-start") == ["dyn"] * 2
    assert "static" in journal.of("stop")


# -- 4, 5: strategies ----------------------------------------------------------------------------


async def test_one_for_all_restarts_everyone(autojump_clock: trio.testing.MockClock) -> None:
    journal = Journal()
    tree = Supervisor("root", specs(journal, "c1", "c2", "c3"), strategy=Strategy.ONE_FOR_ALL)
    async with open_actor_system() as system:
        await system.spawn(tree)
        journal.clear()
        await crash_and_wait(system, "c1")
        assert journal.events == [
            ("stop", "c1"),
            ("stop", "c3"),
            ("stop", "c2"),
            ("start", "c1"),
            ("start", "c2"),
            ("start", "c3"),
        ]


async def test_rest_for_one_restarts_the_rest(autojump_clock: trio.testing.MockClock) -> None:
    journal = Journal()
    tree = Supervisor("root", specs(journal, "c1", "c2", "c3"), strategy=Strategy.REST_FOR_ONE)
    async with open_actor_system() as system:
        await system.spawn(tree)
        journal.clear()
        await crash_and_wait(system, "c2")
        assert journal.events == [
            ("stop", "c2"),
            ("stop", "c3"),
            ("start", "c2"),
            ("start", "c3"),
        ]
        assert journal.starts["c1"] == 1


# -- 6, 7: restart types -------------------------------------------------------------------------


async def _exit_child(system: object, how: str) -> None:
    ref = system.lookup("child")  # type: ignore[attr-defined]
    if how == "normal return":
        await ref.tell(StopSelf())
    elif how == "stop request":
        await ref.stop()
    else:
        await ref.tell(Crash())
    await trio.testing.wait_all_tasks_blocked()


@pytest.mark.parametrize("how", ["normal return", "stop request", "crash"])
@pytest.mark.parametrize("restart", list(Restart))
async def test_restart_types(
    autojump_clock: trio.testing.MockClock, restart: Restart, how: str
) -> None:
    journal = Journal()
    tree = Supervisor("root", [ChildSpec(Worker, args=(journal,), name="child", restart=restart)])
    async with open_actor_system() as system:
        await system.spawn(tree)
        await _exit_child(system, how)
        restarted = journal.starts["child"] == 2
        children = {c.name: c for c in await system.which_children("root")}
        if restart is Restart.PERMANENT or (restart is Restart.TRANSIENT and how == "crash"):
            assert restarted
            assert children["child"].state is ChildState.RUNNING
            assert await system.lookup("child").ask(Ping()) == ("child", 2)
        else:
            assert not restarted
            with pytest.raises(ActorNotFound):
                system.lookup("child")
            if restart is Restart.TEMPORARY:
                assert "child" not in children  # its spec is removed
            else:
                assert children["child"].state is ChildState.STOPPED


async def test_temporary_bystander_is_not_restarted_and_costs_no_budget(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    tree = Supervisor(
        "root",
        [
            *specs(journal, "c1"),
            ChildSpec(Worker, args=(journal,), name="temp", restart=Restart.TEMPORARY),
        ],
        strategy=Strategy.ONE_FOR_ALL,
        max_restarts=1,
        within=60,
    )
    with pytest.raises(RestartIntensityExceeded):
        async with open_actor_system() as system:
            root = await system.spawn(tree)
            await crash_and_wait(system, "c1")
            assert root.is_alive  # one restart: within max_restarts=1 (temp did not count)
            assert [c.name for c in await system.which_children(root)] == ["c1"]
            assert journal.starts["temp"] == 1
            await system.lookup("c1").tell(Crash())  # the second restart exceeds the budget
            await trio.sleep_forever()


# -- 8, 9, 10: shutdown --------------------------------------------------------------------------


async def test_shutdown_cooperative_and_stubborn_children(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    tree = Supervisor(
        "root",
        [
            ChildSpec(Worker, args=(journal,), name="polite", shutdown_timeout=5),
            ChildSpec(Worker, args=(journal,), name="stubborn", shutdown_timeout=3),
        ],
    )
    async with open_actor_system() as system:
        root = await system.spawn(tree)
        await system.lookup("stubborn").tell(Hang())
        await trio.testing.wait_all_tasks_blocked()
        start = trio.current_time()
        await root.stop()
        elapsed = trio.current_time() - start
    # The stubborn child was cancelled after its 3 s; the polite one stopped at once.
    assert elapsed == pytest.approx(3, abs=0.01)
    assert journal.of("stop") == ["stubborn", "polite"]  # on_stop ran for both


async def test_dynamic_children_stop_in_parallel(autojump_clock: trio.testing.MockClock) -> None:
    journal = Journal()
    journal.stop_delay = {"slow1": 1.0, "slow2": 1.0}
    async with open_actor_system() as system:
        root = await system.spawn(Supervisor("root", []))
        for name in ("slow1", "slow2", "never"):
            await system.start_child(
                root, ChildSpec(Worker, args=(journal,), name=name, shutdown_timeout=2)
            )
        await system.lookup("never").tell(Hang())
        await trio.testing.wait_all_tasks_blocked()
        start = trio.current_time()
        await root.stop()
        elapsed = trio.current_time() - start
    assert 1 <= elapsed < 3


async def test_children_start_in_spec_order_and_stop_in_reverse(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    names = ["e", "b", "d", "a", "c"]
    tree = Supervisor("root", specs(journal, *names), strategy=Strategy.REST_FOR_ONE)
    async with open_actor_system() as system:
        await system.spawn(tree)
        assert journal.of("start") == names
        journal.clear()
        await crash_and_wait(system, "e")  # the first child: rest_for_one restarts them all
        assert journal.of("stop") == ["e", "c", "a", "d", "b"]
        assert journal.of("start") == names
        journal.clear()
    assert journal.of("stop") == list(reversed(names))


# -- 11: nested trees ----------------------------------------------------------------------------


async def test_nested_crash_restarts_only_what_its_supervisor_says(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    sub = Supervisor("sub", specs(journal, "b", "c"), strategy=Strategy.ONE_FOR_ALL)
    tree = Supervisor("root", [*specs(journal, "a"), sub])
    async with open_actor_system() as system:
        await system.spawn(tree)
        await crash_and_wait(system, "b")
        assert journal.starts == {"a": 1, "b": 2, "c": 2}
        assert system.lookup("sub").statistics().restarts == 0


async def test_subtree_over_intensity_is_restarted_as_one_child(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    sub = Supervisor("sub", specs(journal, "b", "c"), max_restarts=0, within=60)
    tree = Supervisor("root", [*specs(journal, "a"), sub], max_restarts=5, within=60)
    async with open_actor_system() as system:
        await system.spawn(tree)
        b = system.lookup("b")
        await b.tell(Crash())
        assert await b.ask(Ping()) == ("b", 2)  # same ref, new incarnation under a new sub
        await trio.testing.wait_all_tasks_blocked()
        assert journal.starts == {"a": 1, "b": 2, "c": 2}
        assert system.lookup("sub").statistics().restarts == 1
        assert system.lookup("/root/sub/b") == b


# -- 12: start failures --------------------------------------------------------------------------


async def test_start_failure_under_supervisor_counts_against_budget(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    journal.fail_start.add("bad")
    tree = Supervisor("root", specs(journal, "good", "bad"), max_restarts=2, within=60)
    with pytest.raises(RestartIntensityExceeded) as caught:
        async with open_actor_system() as system:
            await system.spawn(tree)  # the caller of spawn gets the escalation
    assert journal.starts["bad"] == 3
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert journal.of("stop") == ["bad", "bad", "bad", "good"]  # on_stop follows a failed start


# -- 13: backoff ---------------------------------------------------------------------------------


async def test_backoff_delays_restarts_and_resets_after_quiet_period(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    backoff = Backoff(min=1, max=10, jitter=0)
    tree = Supervisor("root", specs(journal, "c", backoff=backoff), max_restarts=100, within=1)

    async def restart_delay() -> float:
        crashed_at = trio.current_time()
        await crash_and_wait(system, "c")
        return journal.times[journal.events.index(("start", "c"), 1)] - crashed_at

    async with open_actor_system() as system:
        await system.spawn(tree)
        assert await restart_delay() == pytest.approx(1)
        journal.clear()
        assert await restart_delay() == pytest.approx(2)
        journal.clear()
        assert await restart_delay() == pytest.approx(4)
        journal.clear()
        await trio.sleep(10)  # a quiet period of Backoff.max
        assert await restart_delay() == pytest.approx(1)


def test_backoff_never_overflows() -> None:
    backoff = Backoff(min=0.5, max=30, jitter=0)
    assert [backoff.delay(n) for n in range(4)] == [0.5, 1, 2, 4]
    for attempt in (100, 10_000, 2**62):
        assert backoff.delay(attempt) == 30
    jittered = Backoff(min=1, max=1, jitter=0.2)
    assert all(0.8 <= jittered.delay(n) <= 1.2 for n in range(50))
    assert Backoff(min=0, max=0, jitter=0).delay(5) == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min": -1},
        {"min": 5, "max": 1},
        {"jitter": 1.5},
        {"factor": 0.5},
        {"max": math.inf},
        {"reset_after": -1},
    ],
)
def test_backoff_rejects_bad_values(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="Backoff"):
        Backoff(**kwargs)


# -- 14: never supervised ------------------------------------------------------------------------


@attrs.frozen
class RaiseBase:
    kind: str


class Exiting(Worker):
    @handler
    async def raise_base(self, msg: RaiseBase) -> None:
        raise {"KeyboardInterrupt": KeyboardInterrupt, "SystemExit": SystemExit}[msg.kind]()


@pytest.mark.parametrize("error", [KeyboardInterrupt, SystemExit])
async def test_base_exceptions_propagate_unsupervised(
    autojump_clock: trio.testing.MockClock, error: type[BaseException]
) -> None:
    journal = Journal()
    tree = Supervisor("root", [ChildSpec(Exiting, args=(journal,), name="x")], max_restarts=5)
    with pytest.raises(error):
        async with open_actor_system() as system:
            await system.spawn(tree)
            await system.lookup("x").tell(RaiseBase(error.__name__))
            await trio.sleep_forever()
    assert journal.starts["x"] == 1  # not restarted


async def test_cancellation_is_not_a_crash(
    autojump_clock: trio.testing.MockClock, log_records: list[dict[str, object]]
) -> None:
    journal = Journal()
    tree = Supervisor("root", specs(journal, "c1", "c2"), max_restarts=0)
    with trio.move_on_after(5) as scope:
        async with open_actor_system() as system:
            await system.spawn(tree)
            await trio.sleep_forever()
    assert scope.cancelled_caught
    assert journal.starts == {"c1": 1, "c2": 1}
    assert sorted(journal.of("stop")) == ["c1", "c2"]
    assert not messages_of(log_records, "ERROR")


# -- 15: death watch -----------------------------------------------------------------------------


async def test_death_watch_notifies_once_for_good_and_never_for_restarts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    tree = Supervisor("root", specs(journal, "c1", "c2"))
    notices: list[object] = []
    async with open_actor_system() as system:
        await system.spawn(tree)
        c1 = system.lookup("c1")

        async def watch() -> None:
            notices.append(await system.watch(c1))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch)
            await crash_and_wait(system, "c1")
            await trio.testing.wait_all_tasks_blocked()
            assert notices == []  # a restart is not a death
            await system.terminate_child("root", "c1")
        assert len(notices) == 1
        late = await system.watch(c1)  # watching after the death: at once
        assert late == notices[0]
        assert late.actor == "/root/c1" and late.reason == "normal"


# -- dynamic children ----------------------------------------------------------------------------


async def test_dynamic_children_counts_and_errors(autojump_clock: trio.testing.MockClock) -> None:
    journal = Journal()
    async with open_actor_system() as system:
        root = await system.spawn(Supervisor("root", specs(journal, "static")))
        ref = await system.start_child(root, ChildSpec(Worker, args=(journal,), name="dyn"))
        assert await ref.ask(Ping()) == ("dyn", 1)
        counts = await system.count_children("root")
        assert (counts.specs, counts.running, counts.workers, counts.supervisors) == (2, 2, 2, 0)
        with pytest.raises(ValueError, match="dyn"):
            await system.start_child(root, ChildSpec(Worker, args=(journal,), name="dyn"))
        journal.fail_start.add("broken")
        with pytest.raises(RuntimeError, match="broken cannot start"):
            await system.start_child(root, ChildSpec(Worker, args=(journal,), name="broken"))
        with pytest.raises(ActorNotFound, match="nope"):
            await system.terminate_child(root, "nope")
        with pytest.raises(TypeError, match="not a supervisor"):
            await system.which_children(ref)
        await system.terminate_child(root, "dyn")
        assert [c.name for c in await system.which_children(root)] == ["static"]
        assert root.is_alive


def test_specs_reject_bad_input() -> None:
    journal = Journal()
    with pytest.raises(TypeError, match="Actor subclass"):
        ChildSpec(object)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="two children are named 'a'"):
        Supervisor("root", specs(journal, "a", "a"))
    with pytest.raises(TypeError, match="ChildSpec, Supervisor or Router"):
        Supervisor("root", [Worker])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="max_restarts"):
        Supervisor("root", [], max_restarts=-1)
    with pytest.raises(ValueError, match="within"):
        Supervisor("root", [], within=0)
    with pytest.raises(ValueError, match="name"):
        Supervisor("a/b", [])


# -- triactor.run --------------------------------------------------------------------------------


def test_run_raises_an_actionable_report_when_the_root_gives_up() -> None:
    journal = Journal()
    journal.fail_start.add("bad")
    tree = Supervisor("root", specs(journal, "good", "bad"), max_restarts=1, within=60)
    with pytest.raises(RestartIntensityExceeded) as caught:
        triactor.run(tree, handle_signals=False)
    report = caught.value.report()
    assert "Supervisor /root gave up." in report
    assert "child:     /root/bad" in report
    assert "restarts:  2 within 60 s (max_restarts=1)" in report
    assert "RuntimeError: bad cannot start" in report  # the last exception's traceback
    assert "supervision_support.py" in report
    assert "What to do" in report


class ShutsDown(Worker):
    async def on_start(self) -> None:
        await super().on_start()
        self.system.begin_shutdown()  # a clean stop of the whole tree


def test_run_returns_after_a_clean_stop() -> None:
    journal = Journal()
    tree = Supervisor(
        "root", [*specs(journal, "a"), ChildSpec(ShutsDown, args=(journal,), name="b")]
    )
    triactor.run(tree, handle_signals=False)  # returns: the tree stopped cleanly
    assert journal.events == [("start", "a"), ("start", "b"), ("stop", "b"), ("stop", "a")]


def test_run_takes_only_a_supervisor() -> None:
    with pytest.raises(TypeError, match="Supervisor"):
        triactor.run(object())  # type: ignore[arg-type]
