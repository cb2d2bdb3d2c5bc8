"""Ctrl-C at every line: each interrupted run ends in KeyboardInterrupt, never a hang or a crash.

See ``tests/ki_injector.py`` for how the signal is placed. Each scenario goes through one part
of the runtime (spawn, ask, stop, restart, drain, shutdown, sync handlers, the thread portal);
the sweep interrupts it at the first execution of every place in triactor's code where a signal
can land and that no earlier scenario reached (``TRIACTOR_KI_SWEEP=all``: at every such event of
every scenario), and once per Trio task step.
"""

from __future__ import annotations

import gc
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import attrs
import pytest
import trio
import trio.lowlevel
from ki_injector import (
    RUN_BOUND,
    Injector,
    LineTracer,
    Location,
    StepInjector,
    Verdict,
    classify,
    hang_guard,
    reseed_trio_scheduler,
    run_trio,
    sweep,
    threads_other_than,
    warm_up,
)
from loguru import logger

import triactor
from triactor import (
    Actor,
    ChildSpec,
    Strategy,
    Supervisor,
    handler,
    open_actor_system,
)
from triactor import _logging as triactor_logging
from triactor.actors._request import Request
from triactor.launcher import run_tree
from triactor.mailbox import Mailbox

# These tests call trio.run themselves, in the main thread (where signals arrive). A Ctrl-C
# that lands between making a coroutine and awaiting it leaves it never awaited: expected here.
pytestmark = [
    pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


@attrs.frozen
class Note:
    n: int


@attrs.frozen
class Get:
    pass


@attrs.frozen
class Fail:
    pass


class Keeper(Actor):
    """Keeps what it is told; answers Get; fails on Fail."""

    def __init__(self) -> None:
        self.notes: list[int] = []

    async def on_start(self) -> None:
        await trio.lowlevel.checkpoint()

    async def on_stop(self) -> None:
        await trio.lowlevel.checkpoint()

    @handler
    async def note(self, msg: Note) -> None:
        await trio.sleep(0.01)  # so that senders and askers queue up behind it
        self.notes.append(msg.n)

    @handler
    async def get(self, msg: Get) -> list[int]:
        return list(self.notes)

    @handler
    async def fail(self, msg: Fail) -> None:
        raise ValueError("asked to fail")


class Slow(Actor):
    """Each note takes a second: a stop deadline cuts it short."""

    shutdown_timeout = 0.5

    @handler
    async def note(self, msg: Note) -> None:
        await trio.sleep(1)


class Relay(Actor):
    """Answers Get by asking another actor: an asker that is an actor's task, not the main one."""

    def __init__(self, target: triactor.ActorRef) -> None:
        self.target = target

    @handler
    async def get(self, msg: Get) -> list[int]:
        result: list[int] = await self.target.ask(msg)
        return result


class Threaded(Actor):
    """A sync handler: runs in a worker thread."""

    def __init__(self) -> None:
        self.total = 0

    @handler
    def note(self, msg: Note) -> int:
        self.total += msg.n
        return self.total


def tree() -> Supervisor:
    return Supervisor(
        "root",
        [
            ChildSpec(Keeper, name="a"),
            Supervisor(
                "pair",
                [ChildSpec(Keeper, name="b"), ChildSpec(Keeper, name="c")],
                strategy=Strategy.ONE_FOR_ALL,
            ),
        ],
    )


# -- scenarios ---------------------------------------------------------------------------------


async def spawn_ask_stop() -> None:
    """Spawn, tell, ask, stop one actor, spawn another, leave the block (drain, on_stop)."""
    async with open_actor_system() as system:
        first = await system.spawn(Keeper, name="first")
        for n in range(3):
            await first.tell(Note(n))
        assert await first.ask(Get()) == [0, 1, 2]
        await first.stop()
        second = await system.spawn(Keeper, name="second", mailbox_capacity=1)
        relay = await system.spawn(Relay, second, name="relay")
        for n in range(3):
            await second.tell(Note(n))  # a full mailbox: the sender waits for room
        assert await relay.ask(Get()) == [0, 1, 2]
        slow = await system.spawn(Slow, name="slow")
        await slow.tell(Note(1))
        await slow.tell(Note(2))  # drained at shutdown until the deadline cancels it


async def restart_and_dynamic_children() -> None:
    """A tree: a crash restarts a one_for_all pair; a dynamic child comes and goes."""
    async with open_actor_system() as system:
        await system.spawn(tree())
        b = system.lookup("b")
        with pytest.raises(ValueError):
            await b.ask(Fail())
        assert await b.ask(Get()) == []
        await system.start_child("root", ChildSpec(Keeper, name="dyn"))
        await system.lookup("dyn").tell(Note(1))
        assert len(await system.which_children("root")) == 3
        await system.terminate_child("root", "dyn")
        await system.lookup("c").tell(Note(2))


@contextmanager
def own_status_directory() -> Iterator[None]:
    """A status socket directory of this run's own (``tempfile.tempdir``: see
    ``triactor status``): the shared one holds the sockets of every triactor process of the
    user, which a run lists (to remove stale ones), so its course would depend on theirs."""
    with tempfile.TemporaryDirectory() as directory:
        previous, tempfile.tempdir = tempfile.tempdir, directory
        try:
            yield
        finally:
            tempfile.tempdir = previous


async def background_graceful_shutdown() -> None:
    """The README's recipe: run_tree without signal handling, stopped by request_stop."""
    with own_status_directory():
        async with trio.open_nursery() as nursery:
            running = await nursery.start(
                lambda task_status: run_tree(  # type: ignore[misc]
                    tree(), handle_signals=False, shutdown_timeout=10, task_status=task_status
                )
            )
            for n in range(3):
                await running.system.lookup("a").tell(Note(n))
            running.request_stop("test")


class SlowThreaded(Actor):
    """A sync handler that outlives its stop deadline: its thread cannot be cancelled."""

    shutdown_timeout = 0.001

    def __init__(self, started: threading.Event) -> None:
        self.started = started

    @handler
    def note(self, msg: Note) -> None:
        self.started.set()
        time.sleep(0.002)


async def sync_handlers() -> None:
    """Plain def handlers in worker threads: asked, stopped, and one cut short by a deadline."""
    async with open_actor_system(thread_limit=1) as system:
        ref = await system.spawn(Threaded, name="threaded")
        await ref.tell(Note(1))
        assert await ref.ask(Note(2)) == 3
        await ref.stop()
        started = threading.Event()
        slow = await system.spawn(SlowThreaded, started, name="slow")
        await slow.tell(Note(1))
        # Cancellable (a Ctrl-C elsewhere cancels this task), and bounded if abandoned.
        await trio.to_thread.run_sync(started.wait, RUN_BOUND, abandon_on_cancel=True)
    # The slow handler's thread ran on past the shutdown; wait until it has reported back (the
    # only worker thread gives its token back after that).
    async with system.thread_limiter:
        pass
    assert slow.statistics().processed == 1


SCENARIOS: dict[str, Callable[[], Any]] = {
    "spawn_ask_stop": spawn_ask_stop,
    "restart_and_dynamic_children": restart_and_dynamic_children,
    "background_graceful_shutdown": background_graceful_shutdown,
    "sync_handlers": sync_handlers,
}

#: Scenarios whose course depends on when real threads finish (a sync handler's thread
#: reports back whenever it is done): a run need not reach a place at the dry run's event number.
THREAD_TIMED = {"sync_handlers"}


@pytest.fixture(autouse=True)
def quiet_logs() -> Iterator[None]:
    """Thousands of interrupted runs log crashes and warnings: keep them out of the output."""
    logger.disable("triactor")
    try:
        yield
    finally:
        logger.enable("triactor")


def report(name: str, runs: int, failures: list[Verdict]) -> str:
    lines = [f"{name}: {len(failures)} of {runs} interrupted runs did not end in KI:"]
    lines += [f"  {verdict.describe()}" for verdict in failures[:40]]
    return "\n".join(lines)


#: Places already interrupted by an earlier scenario of this session (see choose_targets).
SEEN: set[Location] = set()


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_ctrl_c_at_every_line_ends_in_keyboard_interrupt(name: str) -> None:
    runs, failures = sweep(SCENARIOS[name], seen=SEEN, deterministic=name not in THREAD_TIMED)
    print(f"{name}: {runs} interrupted runs")
    assert not failures, report(name, runs, failures)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_ctrl_c_at_every_task_step_ends_in_keyboard_interrupt(name: str) -> None:
    runs, failures = sweep(SCENARIOS[name], steps=True, deterministic=name not in THREAD_TIMED)
    print(f"{name}: {runs} interrupted runs")
    assert not failures, report(name, runs, failures)


def _lines_of(*functions: Callable[..., Any]) -> set[tuple[str, int]]:
    lines = set()
    for fn in functions:
        code = fn.__code__
        lines |= {(code.co_filename, line) for _, _, line in code.co_lines() if line}
    return lines


#: The functions that park a task for a later reschedule.
PARKING_LINES = _lines_of(Request.wait, Mailbox.wait, Mailbox.wait_to_put)


def in_parking_functions(location: Location) -> bool:
    path, line, _ = location
    return (path, line) in PARKING_LINES


def test_ctrl_c_anywhere_in_a_parking_function_never_breaks_trio() -> None:
    """Every execution (not only the first) of the functions that park a task.

    Such a function registers the task for a later ``reschedule``; a Ctrl-C between that and
    the park would leave a finished task registered, and the next message would crash Trio.
    """
    runs, failures = sweep(spawn_ask_stop, only=in_parking_functions)
    assert runs > 10
    assert not failures, report("parking", runs, failures)


# -- the thread portal: Ctrl-C lands in the synchronous caller's thread ------------------------


def portal_scenario() -> None:
    with triactor.start_in_thread(tree(), shutdown_timeout=5) as portal:
        portal.tell("a", Note(1))
        assert portal.ask("a", Get(), timeout=5) == [1]
        portal.tell("b", Note(2))


def run_portal(scenario: Callable[[], Any], injector: Injector) -> BaseException | None:
    reseed_trio_scheduler()
    with hang_guard(), injector.installed():
        try:
            scenario()
        except BaseException as exc:
            return exc
    return None


def no_portal_thread_left() -> None:
    """After each run, the portal's Trio thread must have ended (within a bound)."""
    for thread in threads_other_than():
        if thread.name.startswith("triactor-"):
            thread.join(RUN_BOUND)
            assert not thread.is_alive(), f"{thread.name} still runs after the portal was left"


def test_ctrl_c_in_the_portal_callers_thread_ends_in_keyboard_interrupt() -> None:
    runs, failures = sweep(
        portal_scenario, run=run_portal, after_run=no_portal_thread_left, seen=SEEN
    )
    print(f"portal: {runs} interrupted runs")
    assert not failures, report("portal", runs, failures)


# -- the harness itself ------------------------------------------------------------------------


def test_the_injector_fires_once_where_it_says() -> None:
    """The harness itself: one signal, at the chosen place, and the run then ends in KI."""
    warm_up(spawn_ask_stop)
    dry = LineTracer(record=True)
    assert run_trio(spawn_ask_stop, dry) is None
    assert dry.fired_at is None and dry.count == len(dry.locations) > 100
    target = len(dry.locations) // 2
    tracer = LineTracer(target=target)
    ended = classify(run_trio(spawn_ask_stop, tracer))
    assert tracer.fired_at == dry.locations[target - 1]  # the runs are deterministic
    assert ended.startswith("keyboard-interrupt")
    step = StepInjector(target=5)
    assert classify(run_trio(spawn_ask_stop, step)).startswith("keyboard-interrupt")
    assert step.fired_at is not None and step.protected


@pytest.fixture
def sigint_ignored() -> Iterator[None]:
    """SIGINT ignored, as in a process started by a shell without job control (``cmd &``)."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("sigint_ignored")
def test_the_injector_interrupts_a_process_that_ignores_sigint() -> None:
    """Trio takes SIGINT over only from Python's default handler: each run puts that in place
    (in and outside Trio), so that its signal is not ignored, and puts SIG_IGN back after."""
    warm_up(spawn_ask_stop)
    for injector in (LineTracer(target=1), LineTracer(target=300), StepInjector(target=5)):
        ended = classify(run_trio(spawn_ask_stop, injector))
        assert injector.fired_at is not None
        assert ended.startswith("keyboard-interrupt"), f"{type(injector).__name__}: {ended}"
    portal = LineTracer(target=1)
    ended = classify(run_portal(portal_scenario, portal))
    no_portal_thread_left()
    assert portal.fired_at is not None and portal.protected is None  # outside Trio
    assert ended.startswith("keyboard-interrupt"), f"portal: {ended}"
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_garbage_collections_do_not_move_the_events() -> None:
    """A collection can start at any allocation, and what it runs cannot be interrupted (its
    exceptions are ignored): none runs during a run, however often the process collects."""
    warm_up(spawn_ask_stop)
    calm = LineTracer(record=True)
    assert run_trio(spawn_ask_stop, calm) is None
    thresholds = gc.get_threshold()
    gc.set_threshold(1)  # a collection at almost every allocation
    try:
        busy = LineTracer(record=True)
        assert run_trio(spawn_ask_stop, busy) is None
    finally:
        gc.set_threshold(*thresholds)
    assert busy.locations == calm.locations


class CollectorHolder:
    """Garbage (a cycle) whose finalizer keeps the collection that found it going until told."""

    def __init__(self, collecting: threading.Event, finish: threading.Event) -> None:
        self.itself = self
        self.collecting = collecting
        self.finish = finish

    def __del__(self) -> None:
        self.collecting.set()
        self.finish.wait(RUN_BOUND)


def test_a_collection_in_another_thread_hides_no_events() -> None:
    """Garbage collection hooks are process-wide: a collection by another thread (a worker
    left by an earlier test) must not hide the events of the traced thread, even one that
    lasts all through a run."""
    warm_up(spawn_ask_stop)
    calm = LineTracer(record=True)
    assert run_trio(spawn_ask_stop, calm) is None

    async def beside_a_collection() -> None:
        collecting, finish = threading.Event(), threading.Event()

        def collect() -> None:
            CollectorHolder(collecting, finish)
            gc.collect()

        thread = threading.Thread(target=collect, name="collector")
        thread.start()
        try:
            assert await trio.to_thread.run_sync(collecting.wait, RUN_BOUND)
            await spawn_ask_stop()
        finally:
            finish.set()
            await trio.to_thread.run_sync(thread.join)

    traced = LineTracer(record=True)
    assert run_trio(beside_a_collection, traced) is None
    assert traced.locations == calm.locations


def test_the_sweep_places_its_signals_even_where_the_first_run_fills_caches() -> None:
    """A process's first run fills caches (here, the standard loggers by name) that later runs
    only read, so it has more events: the sweep warms up before its dry run, and each
    interrupted run fires where the dry run had its target."""
    warm_up(spawn_ask_stop)
    dry = LineTracer(record=True)
    assert run_trio(spawn_ask_stop, dry) is None
    # A place the runs reach once, near their end: after the first run's extra events.
    last = next(where for where in reversed(dry.locations) if dry.locations.count(where) == 1)
    route, full_tracebacks, message_contents = triactor_logging.settings()
    triactor.configure_logging(to="logging")
    triactor_logging._stdlib_loggers.clear()  # as in a process that has not logged yet
    try:
        runs, failures = sweep(spawn_ask_stop, only=lambda where: where == last)
    finally:
        triactor.configure_logging(
            to=route, full_tracebacks=full_tracebacks, message_contents=message_contents
        )
    assert runs == 1
    assert not failures, report("first run", runs, failures)
