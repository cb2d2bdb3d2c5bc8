"""Diagnostics: blocking-call detection, snapshots with await stacks, ask-cycle refusal."""

from __future__ import annotations

import signal
import time

import attrs
import pytest
import trio
import trio.testing

from triactor import Actor, ActorRef, AskCycleError, handler, open_actor_system
from triactor.diagnostics import BlockingCallDetected, detect_blocking, format_snapshot

pytest_plugins = ["pytester"]


@attrs.frozen
class Nap:
    seconds: float


@attrs.frozen
class Wait:
    pass


class Sleepy(Actor):
    @handler
    async def nap(self, msg: Nap) -> None:
        time.sleep(msg.seconds)  # noqa: ASYNC251 - the accidental blocking call

    @handler
    async def wait(self, msg: Wait) -> None:
        await trio.sleep_forever()


NAP_LINE = Sleepy.nap.__code__.co_firstlineno + 2  # the time.sleep line


async def test_detector_names_actor_message_and_blocking_line() -> None:
    async with detect_blocking(0.1, mode="record") as detector, open_actor_system() as system:
        sleepy = await system.spawn(Sleepy, name="sleepy")
        await sleepy.ask(Nap(0.3))
        await sleepy.ask(Nap(0.0))  # a quick handler: no report
    [report] = detector.reports
    assert report.actor == "/sleepy"
    assert report.message_type == "Nap"
    assert report.culprit is not None
    assert report.culprit.startswith(f"{__file__}:{NAP_LINE} in nap")
    assert 0.3 <= report.blocked_for < 2
    assert "/sleepy handling Nap blocked the Trio loop" in str(report)


async def test_detector_fail_mode_raises_with_the_report() -> None:
    with pytest.raises(BlockingCallDetected) as caught:
        async with detect_blocking(0.1, mode="fail"), open_actor_system() as system:
            await (await system.spawn(Sleepy, name="sleepy")).ask(Nap(0.3))
    assert f"{__file__}:{NAP_LINE}" in str(caught.value)


async def test_detector_warn_mode_logs(log_records: list[dict[str, object]]) -> None:
    async with detect_blocking(0.1):
        time.sleep(0.25)  # noqa: ASYNC251 - on purpose
        await trio.lowlevel.checkpoint()
    warnings = [
        str(r["message"]) for r in log_records if "blocked the Trio loop" in str(r["message"])
    ]
    assert len(warnings) == 1
    assert "test_detector_warn_mode_logs" in warnings[0]


async def test_detector_rejects_bad_threshold() -> None:
    with pytest.raises(ValueError, match="threshold"):
        async with detect_blocking(0):
            pass


def test_pytest_option_fails_a_blocking_test(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml("[tool.pytest.ini_options]\ntrio_mode = true\n")
    pytester.makepyfile(
        """
        import time
        import trio
        import pytest

        async def test_blocks():
            time.sleep(0.3)
            await trio.lowlevel.checkpoint()

        async def test_fine():
            await trio.sleep(0)

        @pytest.mark.allow_blocking
        async def test_exempt():
            time.sleep(0.3)
        """
    )
    result = pytester.runpytest("--triactor-blocking=0.1", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        ["*BlockingCallDetected*", "*test_pytest_option_fails*.py:6 in test_blocks*"]
    )


async def test_snapshot_shows_a_stuck_handler_with_its_await_stack(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_actor_system() as system:
        stuck = await system.spawn(Sleepy, name="stuck", shutdown_timeout=0.5)
        idle = await system.spawn(Sleepy, name="idle")
        await idle.ask(Nap(0))
        await stuck.tell(Wait())
        await trio.sleep(42)
        snapshots = {s.path: s for s in system.snapshot(stacks_older_than=10)}
        busy = snapshots["/stuck"]
        assert busy.state == "processing"
        assert busy.current_message_type == "Wait"
        assert busy.busy_for == pytest.approx(42)
        assert busy.await_stack is not None
        assert any("in wait" in frame and __file__ in frame for frame in busy.await_stack)
        calm = snapshots["/idle"]
        assert (calm.state, calm.processed, calm.current_message_type) == ("idle", 1, None)
        assert calm.await_stack is None
        assert system.snapshot()[0].await_stack is None  # stacks only on request
        text = format_snapshot(system.snapshot(stacks_older_than=10))
        assert "stuck [processing] handling Wait for 42.000s" in text
        assert "idle [idle]" in text


# -- ask cycles ----------------------------------------------------------------------------------


@attrs.frozen
class AskNext:
    """Ask the next actor in ``route`` (by name) to pass it on; the last one answers."""

    route: tuple[str, ...]


class Relay(Actor):
    @handler
    async def relay(self, msg: AskNext) -> str:
        if not msg.route:
            return self.name
        next_ref: ActorRef = self.system.lookup(msg.route[0])
        return await next_ref.ask(AskNext(msg.route[1:]))


async def _ask_route(route: tuple[str, ...], names: tuple[str, ...]) -> str:
    async with open_actor_system() as system:
        for name in names:
            await system.spawn(Relay, name=name)
        first = system.lookup(route[0])
        return await first.ask(AskNext(route[1:]), timeout=5)


@pytest.mark.parametrize(
    ("route", "cycle"),
    [
        (("a", "b", "a"), "/a -> /b -> /a"),
        (("a", "b", "c", "a"), "/a -> /b -> /c -> /a"),
        (("a", "b", "c", "b"), "/b -> /c -> /b"),
        (("a", "a"), "/a -> /a"),
    ],
)
async def test_ask_cycles_are_refused_naming_the_cycle(
    autojump_clock: trio.testing.MockClock, route: tuple[str, ...], cycle: str
) -> None:
    with pytest.raises(AskCycleError, match=cycle.replace("/", "/")) as caught:
        await _ask_route(route, ("a", "b", "c"))
    assert " -> ".join(caught.value.cycle) == cycle
    assert "AskNext" in str(caught.value)


async def test_ask_chain_without_a_cycle_works(autojump_clock: trio.testing.MockClock) -> None:
    assert await _ask_route(("a", "b", "c"), ("a", "b", "c")) == "c"


async def test_the_same_actor_may_be_asked_again_once_the_chain_is_done(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_actor_system() as system:
        for name in ("a", "b"):
            await system.spawn(Relay, name=name)
        a = system.lookup("a")
        assert await a.ask(AskNext(("b",))) == "b"
        assert await system.lookup("b").ask(AskNext(("a",))) == "a"  # not a cycle: a is free


async def test_detector_falls_back_to_a_thread_when_sigalrm_is_taken() -> None:
    def users_handler(signum: int, frame: object) -> None:
        pass

    previous = signal.signal(signal.SIGALRM, users_handler)
    try:
        async with detect_blocking(0.1, mode="record") as detector:
            assert detector._watchdog is not None  # the thread watchdog, not the timer
            async with open_actor_system() as system:
                await (await system.spawn(Sleepy, name="sleepy")).ask(Nap(0.3))
        assert signal.getsignal(signal.SIGALRM) is users_handler  # left in place
    finally:
        signal.signal(signal.SIGALRM, previous)
    [report] = detector.reports
    assert report.actor == "/sleepy"
    assert report.culprit is not None and f":{NAP_LINE} in nap" in report.culprit


async def test_detector_restores_sigalrm_after_use() -> None:
    async with detect_blocking(0.1, mode="record"):
        assert signal.getsignal(signal.SIGALRM) not in (signal.SIG_DFL, None)
    assert signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, None)
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
