"""The launcher in-process: run_tree's graceful shutdown, deadline and abort; triactor.run;
exit codes; loading module:attr targets; the tree drawing; the live status line."""

from __future__ import annotations

import functools
import io
import threading

import attrs
import pytest
import trio
import trio.lowlevel
import trio.testing
from launcher_fixtures import apps, failing

import triactor
from triactor import (
    Actor,
    ActorSystem,
    Backoff,
    ChildSpec,
    Overflow,
    Restart,
    RestartIntensityExceeded,
    Strategy,
    Supervisor,
    handler,
)
from triactor.launcher import RunningTree, RunResult, StatusLine, render_tree, run_tree
from triactor.launcher._cli import exit_code
from triactor.launcher._loading import TargetError, TargetFailed, build_tree
from triactor.launcher._status import StatusSnapshot, format_status, take_snapshot


@attrs.frozen
class Work:
    seconds: float


class Slow(Actor):
    """Each Work takes ``seconds``; records the work it finished and that on_stop ran."""

    def __init__(self, journal: list[str]) -> None:
        self.journal = journal

    @handler
    async def work(self, msg: Work) -> None:
        await trio.sleep(msg.seconds)
        self.journal.append("work")

    async def on_stop(self) -> None:
        self.journal.append("on_stop")


async def start_tree(nursery: trio.Nursery, tree: Supervisor, **options: object) -> RunningTree:
    """``run_tree`` in ``nursery`` (without signal handling); its RunningTree once started."""
    running: RunningTree = await nursery.start(
        functools.partial(run_tree, tree, handle_signals=False, **options)  # type: ignore[arg-type]
    )
    return running


def slow_tree(journal: list[str]) -> Supervisor:
    return Supervisor("root", [ChildSpec(Slow, args=(journal,), name="slow", shutdown_timeout=100)])


async def test_request_stop_stops_gracefully(autojump_clock: trio.testing.MockClock) -> None:
    journal: list[str] = []
    async with trio.open_nursery() as nursery:
        running = await start_tree(nursery, slow_tree(journal))
        assert running.root is not None and running.root.path == "/root"
        await running.system.lookup("slow").tell(Work(1.0))
        await trio.sleep(0.5)  # the work is half done when the stop is asked for
        running.request_stop("test")
    result = running.result()
    assert (result.stopped_by, result.aborted_by, result.clean) == ("test", None, True)
    assert result.shutdown_seconds == pytest.approx(0.5)
    assert journal == ["work", "on_stop"]  # the handler in progress finished first


async def test_graceful_stop_drains_queued_messages(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal: list[str] = []
    async with trio.open_nursery() as nursery:
        running = await start_tree(nursery, slow_tree(journal))
        slow = running.system.lookup("slow")
        for _ in range(5):
            await slow.tell(Work(0.1))
        running.request_stop("test")
    assert journal == ["work"] * 5 + ["on_stop"]
    assert running.system.dead_letters.count == 0


async def test_deadline_cancels_what_is_left(autojump_clock: trio.testing.MockClock) -> None:
    journal: list[str] = []
    async with trio.open_nursery() as nursery:
        running = await start_tree(nursery, slow_tree(journal), shutdown_timeout=2.0)
        await running.system.lookup("slow").tell(Work(60.0))
        await trio.sleep(0.01)  # the actor is busy with it now
        started = trio.current_time()
        running.request_stop("test")
    assert trio.current_time() - started == pytest.approx(2.0)
    assert running.result().aborted_by == "deadline"
    assert journal == ["on_stop"]  # cancelled mid-work; on_stop still ran


async def test_second_request_aborts_at_once(autojump_clock: trio.testing.MockClock) -> None:
    journal: list[str] = []
    async with trio.open_nursery() as nursery:
        running = await start_tree(nursery, slow_tree(journal))
        await running.system.lookup("slow").tell(Work(60.0))
        await trio.sleep(0.01)  # the actor is busy with it now
        running.request_stop("first")
        await trio.sleep(1.0)
        started = trio.current_time()
        running.request_stop("second")
    assert trio.current_time() - started == pytest.approx(0.0)
    result = running.result()
    assert (result.stopped_by, result.aborted_by, result.clean) == ("first", "second", False)
    assert journal == ["on_stop"]


async def test_tree_that_stops_by_itself_returns(autojump_clock: trio.testing.MockClock) -> None:
    result = await run_tree(apps.finite_tree(), handle_signals=False)
    assert result == RunResult(None, None, None)


async def test_root_giving_up_raises_from_run_tree() -> None:
    with pytest.raises(RestartIntensityExceeded) as info:
        await run_tree(failing.gives_up, handle_signals=False)
    assert info.value.supervisor == "/root"
    assert "Supervisor /root gave up." in info.value.report()


async def test_monitor_runs_beside_the_tree_and_is_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    calls: list[tuple[ActorSystem, str]] = []
    cancelled = trio.Event()

    async def monitor(system: ActorSystem, root: triactor.ActorRef) -> None:
        calls.append((system, root.path))
        try:
            await trio.sleep_forever()
        finally:
            cancelled.set()

    async with trio.open_nursery() as nursery:
        running = await start_tree(nursery, slow_tree([]), monitor=monitor)
        await trio.sleep(0.01)
        assert calls == [(running.system, "/root")]
        running.request_stop()
    assert cancelled.is_set()


def test_run_is_synchronous_and_returns_the_result(capsys: pytest.CaptureFixture[str]) -> None:
    result = triactor.run(apps.finite_tree(), shutdown_timeout=5)
    assert result.clean and result.stopped_by is None
    assert "work done" in capsys.readouterr().out


def test_run_outside_the_main_thread_handles_no_signals() -> None:
    results: list[RunResult] = []
    thread = threading.Thread(target=lambda: results.append(triactor.run(apps.finite_tree())))
    thread.start()
    thread.join(10)
    assert results and results[0].clean


@pytest.mark.parametrize(
    ("kwargs", "error", "text"),
    [
        ({"tree": 42}, TypeError, "triactor.run takes a Supervisor, got 42"),
        ({"shutdown_timeout": -1}, ValueError, "shutdown_timeout must be >= 0"),
        ({"shutdown_timeout": "5"}, TypeError, "shutdown_timeout must be a number"),
    ],
)
def test_run_rejects_bad_input(
    kwargs: dict[str, object], error: type[Exception], text: str
) -> None:
    arguments: dict[str, object] = {"tree": apps.finite_tree(), **kwargs}
    with pytest.raises(error, match=text):
        triactor.run(**arguments)  # type: ignore[arg-type]


def test_exit_codes() -> None:
    assert exit_code(RunResult("SIGINT", None, 0.1)) == 0
    assert exit_code(RunResult(None)) == 0
    assert exit_code(RunResult("SIGINT", "SIGINT", 0.1)) == 130
    assert exit_code(RunResult("SIGINT", "SIGTERM", 0.1)) == 143
    assert exit_code(RunResult("SIGTERM", "deadline", 10.0)) == 3


# -- loading module:attr ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "launcher_fixtures.apps:tree",
        "launcher_fixtures.apps:async_finite_tree",
        "launcher_fixtures.apps:slow_start",
        "launcher_fixtures.apps:Namespace.tree",
    ],
)
async def test_build_tree_accepts_trees_and_factories(target: str) -> None:
    assert isinstance(await build_tree(target), Supervisor)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("launcher_fixtures.apps", "expected a target of the form module:attr"),
        ("launcher_fixtures.apps:", "expected a target of the form module:attr"),
        (":tree", "expected a target of the form module:attr"),
        ("launcher_fixtures.nope:tree", "no module named 'launcher_fixtures.nope'"),
        ("nope_pkg.mod:tree", "no module named 'nope_pkg'"),
        ("launcher_fixtures.apps:nope", "'launcher_fixtures.apps' has no attribute 'nope'; "),
        ("launcher_fixtures.apps:Namespace.nope", "'launcher_fixtures.apps.Namespace' has no"),
        ("launcher_fixtures.apps:NOT_A_TREE", "is an int, not a Supervisor or a function"),
        ("launcher_fixtures.apps:needs_arguments", "takes required arguments (size); the"),
        ("launcher_fixtures.apps:returns_a_dict", "returned a dict; it must return a"),
        ("launcher_fixtures.apps:Worker", "is an Actor class, not a tree; run it under a"),
    ],
)
async def test_build_tree_explains_bad_targets(target: str, message: str) -> None:
    with pytest.raises(TargetError) as info:
        await build_tree(target)
    assert message in str(info.value)


async def test_missing_attribute_lists_what_the_module_offers() -> None:
    with pytest.raises(TargetError) as info:
        await build_tree("launcher_fixtures.apps:nope")
    assert "finite_tree" in str(info.value) and "tree" in str(info.value)


@pytest.mark.parametrize(
    ("target", "cause"),
    [
        ("launcher_fixtures.broken:tree", ModuleNotFoundError),
        ("launcher_fixtures.apps:raises", RuntimeError),
    ],
)
async def test_failing_user_code_is_not_a_bad_target(target: str, cause: type[Exception]) -> None:
    with pytest.raises(TargetFailed) as info:
        await build_tree(target)
    assert isinstance(info.value.__cause__, cause)


# -- the tree drawing ----------------------------------------------------------------------------


class Fetcher(Actor):
    mailbox_capacity = 8


class Parser(Actor):
    max_concurrency = 4
    overflow = Overflow.DROP_OLDEST


def test_render_tree_draws_names_strategies_restart_types_and_intensity() -> None:
    tree = Supervisor(
        "root",
        [
            ChildSpec(Fetcher, name="fetch", backoff=Backoff(min=0.1, max=10.0, jitter=0.2)),
            Supervisor(
                "workers",
                [
                    ChildSpec(Parser, name="p1", restart=Restart.TRANSIENT),
                    ChildSpec(Parser, name="p2", restart=Restart.TEMPORARY, shutdown_timeout=1),
                ],
                strategy=Strategy.ONE_FOR_ALL,
                max_restarts=5,
                within=30,
            ),
            ChildSpec(Fetcher, name="last", mailbox_capacity=2, overflow=Overflow.FAIL),
        ],
        strategy=Strategy.REST_FOR_ONE,
        max_restarts=3,
        within=5,
    )
    assert render_tree(tree) == (
        "root  (supervisor rest_for_one, max 3 restarts in 5 s)\n"
        "├── fetch  Fetcher (permanent, shutdown 5 s, mailbox 8 block, "
        "backoff 0.1..10 s x2 ±20%)\n"
        "├── workers  (supervisor one_for_all, max 5 restarts in 30 s, permanent)\n"
        "│   ├── p1  Parser (transient, shutdown 5 s, mailbox 1000 drop_oldest, concurrency 4)\n"
        "│   └── p2  Parser (temporary, shutdown 1 s, mailbox 1000 drop_oldest, concurrency 4)\n"
        "└── last  Fetcher (permanent, shutdown 5 s, mailbox 2 fail)"
    )
    ascii_lines = render_tree(tree, ascii_only=True).splitlines()
    assert ascii_lines[1].startswith("|-- fetch") and "+/-20%" in ascii_lines[1]
    assert ascii_lines[4].startswith("|   `-- p2")
    assert all(line.isascii() for line in ascii_lines)


def test_render_tree_rejects_a_non_tree() -> None:
    with pytest.raises(TypeError, match="render_tree takes a Supervisor"):
        render_tree(Fetcher)  # type: ignore[arg-type]


# -- the live status line ------------------------------------------------------------------------


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_format_status() -> None:
    snapshot = StatusSnapshot(
        actors=7, processed=12345, restarts=2, queued=3, dead_letters=1, shutting_down=False
    )
    assert format_status(snapshot, uptime=3725, rate=98.4) == (
        "running 1:02:05 | 7 actors | 12,345 processed (98/s) | 2 restarts | 3 queued | "
        "1 dead letters"
    )
    stopping = attrs.evolve(snapshot, shutting_down=True)
    assert format_status(stopping, uptime=0, rate=0).startswith("stopping 0:00:00 |")


async def test_status_line_tracks_the_system(autojump_clock: trio.testing.MockClock) -> None:
    terminal = FakeTerminal()
    status = StatusLine(terminal, enabled=True, interval=1.0)
    journal: list[str] = []
    async with trio.open_nursery() as nursery:
        running = await start_tree(nursery, slow_tree(journal), monitor=status.run)
        slow = running.system.lookup("slow")
        for _ in range(3):  # done at 0.4, 0.8 and 1.2 s: never at a redraw (every 1 s)
            await slow.tell(Work(0.4))
        await trio.sleep(0.1)
        assert take_snapshot(running.system) == StatusSnapshot(
            actors=2, processed=0, restarts=0, queued=2, dead_letters=0, shutting_down=False
        )
        await trio.sleep(2.0)  # all three done; redrawn at 1 s (2 done) and 2 s (3 done)
        status.write("a log line\n")
        running.request_stop()
    screen = terminal.getvalue()
    assert "\r\x1b[Krunning 0:00:00 | 2 actors | 0 processed (0/s)" in screen
    assert "running 0:00:01 | 2 actors | 2 processed (2/s) | 0 restarts | 0 queued" in screen
    assert "running 0:00:02 | 2 actors | 3 processed (1/s) | 0 restarts | 0 queued" in screen
    # A log line erases the status line, then the line is drawn again below it.
    assert "\r\x1b[Ka log line\nrunning 0:00:0" in screen
    assert screen.endswith("\r\x1b[K")  # erased when the tree stopped
    assert "\n" not in screen.replace("a log line\n", "")


async def test_status_line_off_writes_plain_lines() -> None:
    stream = io.StringIO()
    status = StatusLine(stream, enabled=False)
    async with triactor.open_actor_system() as system:
        root = await system.spawn(Supervisor("root"))
        await status.run(system, root)  # returns at once
    status.write("plain\n")
    assert stream.getvalue() == "plain\n"
