"""A deterministic Ctrl-C injector: raise SIGINT at a chosen line of triactor's own code.

Trio decides what a SIGINT does by looking at the frame it lands in: in code marked with
``enable_ki_protection`` (Trio's core, and triactor's critical sections) it is deferred and
delivered to the main task at its next checkpoint; anywhere else ``KeyboardInterrupt`` is raised
right there. The real question for a runtime is therefore "what if the signal lands *here*?",
for every line. Trio's own tests answer it for its primitives by calling ``raise_signal`` at
chosen points (``trio/_core/_tests/test_ki.py``); this module does the same for a whole
scenario, at every line of the ``triactor`` package the scenario executes:

1. a dry run with a tracer counts the places in triactor's code where a signal can land (see
   :class:`LineTracer`) and records where each is;
2. for each chosen event number N (by default the first execution of every distinct place;
   ``TRIACTOR_KI_SWEEP=all``: every event), the scenario runs again and the tracer raises
   SIGINT at the N-th event, exactly once.

Runs are deterministic, so that event N of a run is event N of the dry run: Trio's scheduler is
made deterministic by Hypothesis's Trio plugin, and its random source is reseeded before every
run; time comes from a ``MockClock`` with autojump; no garbage collection runs during a run; and
an untraced run first fills the caches that only a process's first run fills (see
:func:`run_conditions` and :func:`warm_up`). :func:`sweep` checks it: a run whose signal lands
anywhere but where the dry run said fails.
A run that does not end within a wall-clock bound is a hang: a watchdog breaks it and the run
counts as a failure (see :func:`hang_guard`), so a hang fails loudly instead of stalling CI.
"""

from __future__ import annotations

import dis
import faulthandler
import gc
import os
import signal
import sys
import threading
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final

import attrs
import trio
import trio.testing

import triactor

#: Source files whose lines the injector may interrupt: the triactor package.
PACKAGE_DIR: Final = os.path.dirname(triactor.__file__) + os.sep

#: Wall-clock seconds one run may take; longer is a hang (the process dumps stacks and exits).
RUN_BOUND: Final = float(os.environ.get("TRIACTOR_KI_BOUND", "60"))

#: ``TRIACTOR_KI_SWEEP=all`` interrupts every line event, not only the first of each line.
SWEEP_ALL: Final = os.environ.get("TRIACTOR_KI_SWEEP") == "all"

#: (file, line, what) for a line of triactor's code; (task name, step, "") for a task step.
Location = tuple[str, int, str]

_CALLS: Final = frozenset(
    dis.opmap[name] for name in ("CALL", "CALL_FUNCTION_EX", "CALL_KW") if name in dis.opmap
)
_RESUME: Final = dis.opmap["RESUME"]


@attrs.define
class LineTracer:
    """Counts the places in triactor's code where a signal can land; raises SIGINT at one.

    CPython runs signal handlers only at some instructions: when a call returns, at a function's
    start, and on loop back-edges. Every call made by triactor's code is therefore two places:
    the callee's first instruction (under the callee's own KI protection), and the instruction
    after the call (the result is dropped). Event number ``target`` (1-based) gets the signal.
    """

    target: int | None = None
    count: int = 0
    locations: list[Location] = attrs.Factory(list)
    record: bool = False
    #: Where the signal was raised, once it was.
    fired_at: Location | None = None
    #: Whether the signal landed in KI-protected code (deferred to the main task).
    protected: bool | None = None
    _after: types.FrameType | None = None

    def global_trace(self, frame: types.FrameType, event: str, arg: Any) -> Any:
        if event != "call" or self.fired_at is not None:
            return None
        caller = frame.f_back
        code = frame.f_code
        if (
            caller is not None
            and caller.f_code.co_filename.startswith(PACKAGE_DIR)
            and not _swallows_exceptions(code)
            and code.co_code[frame.f_lasti] == _RESUME
            and code.co_code[frame.f_lasti + 1] == 0
        ):
            # A function called from triactor's code starts (not a coroutine resuming): the
            # signal lands in the callee's first instruction, under the callee's protection.
            self._event(caller, f"entering {code.co_name}")
            if self.fired_at is not None:
                return None
        if code.co_filename.startswith(PACKAGE_DIR):
            frame.f_trace_lines = False
            frame.f_trace_opcodes = True
            return self.local_trace
        return None

    def local_trace(self, frame: types.FrameType, event: str, arg: Any) -> Any:
        if self.fired_at is not None:
            return None
        if event != "opcode":
            return self.local_trace
        if self._after is frame:
            # The instruction after a call: where CPython checks for signals once it returned.
            self._after = None
            self._event(frame, "after a call")
            if self.fired_at is not None:
                return None
        if frame.f_code.co_code[frame.f_lasti] in _CALLS:
            self._after = frame
        return self.local_trace

    def _event(self, frame: types.FrameType, what: str) -> None:
        self.count += 1
        if self.record or self.count == self.target:
            # The same line in the main task and in another task are two places: Trio delivers
            # a deferred KeyboardInterrupt to the main task, while any other task just dies.
            where = (frame.f_code.co_filename, frame.f_lineno, f"{what}, in {_task_role()}")
            if self.record:
                self.locations.append(where)
        if self.count == self.target:
            self.fired_at = where
            sys.settrace(None)
            self.protected = trio.lowlevel.currently_ki_protected() if _in_trio() else None
            # Runs the SIGINT handler before returning: Trio's inside a run (raise here or
            # defer to the main task, by the protection of this frame's callers), Python's
            # default outside one.
            signal.raise_signal(signal.SIGINT)

    @contextmanager
    def installed(self) -> Iterator[None]:
        previous = sys.gettrace()
        with run_conditions():
            sys.settrace(self.global_trace)
            try:
                yield
            finally:
                sys.settrace(previous)


class StepInjector(trio.abc.Instrument):
    """Counts Trio task steps; raises SIGINT just before step number ``target``.

    The signal lands in Trio's scheduler, which is KI-protected: it is the case of a Ctrl-C
    that arrives while the loop is between tasks, delivered to the main task wherever it waits.
    """

    def __init__(self, target: int | None = None, *, record: bool | None = None) -> None:
        self.target = target
        self.count = 0
        self.locations: list[Location] = []
        self.record = target is None if record is None else record
        self.fired_at: Location | None = None
        self.protected: bool | None = None

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.count += 1
        if self.record:
            self.locations.append((task.name, self.count, ""))
        if self.count == self.target:
            self.fired_at = (task.name, self.count, "")
            self.protected = True
            signal.raise_signal(signal.SIGINT)

    @contextmanager
    def installed(self) -> Iterator[None]:
        with run_conditions():
            yield


@contextmanager
def run_conditions() -> Iterator[None]:
    """What every run needs, whatever the process did before it: Python's own SIGINT handler,
    and no automatic garbage collection.

    Trio installs its SIGINT handler only in place of Python's ``default_int_handler``. A
    process started with SIGINT ignored (a background job of a shell without job control: a
    CI step's ``cmd &``, ``nohup``) keeps it ignored, and there every raised SIGINT would do
    nothing.

    A collection starts at whichever allocation crosses a threshold, so where it starts depends
    on all that the process (any of its threads) did before; it runs finalizers and weakref
    callbacks there, whose exceptions Python ignores ("Exception ignored in ..."): a signal
    landing in them is lost in any program, and their events would not be where the dry run
    had them. So none runs during a run; what runs leave is collected between them, once this
    block has ended.
    """
    previous = signal.getsignal(signal.SIGINT)
    collecting = gc.isenabled()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
        if previous is not None:  # None: installed from C, cannot be put back from Python
            signal.signal(signal.SIGINT, previous)


def _swallows_exceptions(code: types.CodeType) -> bool:
    """Whether Python may ignore what ``code`` raises: finalizers, weakref callbacks, and the
    ``abc`` hooks that CPython calls while it matches an exception against a class.

    A signal landing in one can be lost in any Python program ("Exception ignored in ..."),
    and Trio treats ``__del__`` as protected; such places are not the runtime's to fix.
    """
    return (
        code.co_name == "__del__"
        or code.co_filename in _IGNORING_FILES
        or (os.path.basename(code.co_filename) in _IGNORING_FILES)
    )


_IGNORING_FILES: Final = frozenset(
    {"weakref.py", "_weakrefset.py", "_ki.py", "abc.py", "<frozen abc>"}
)


#: The task a run's scenario runs in (set by :func:`run_trio`).
_main_task: list[trio.lowlevel.Task | None] = [None]


def _task_role() -> str:
    try:
        task = trio.lowlevel.current_task()
    except RuntimeError:
        return "the calling thread"
    return "the main task" if task is _main_task[0] else "another task"


def _in_trio() -> bool:
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        return False
    return True


def short(location: Location | None) -> str:
    """``_cell.py:123`` for a location in the package."""
    if location is None:
        return "nowhere"
    path, line, when = location
    return f"{path.removeprefix(PACKAGE_DIR)}:{line}{f' {when}' if when else ''}"


def reseed_trio_scheduler() -> None:
    """Make the order in which Trio runs a batch of tasks the same in every run."""
    core_run = sys.modules["trio._core._run"]
    rng = getattr(core_run, "_r", None)
    if rng is not None:
        rng.seed(12)


class Hang(Exception):
    """Raised in the main thread when a run outlives :data:`RUN_BOUND` (the run hangs)."""


def _raise_hang(signum: int, frame: types.FrameType | None) -> None:
    raise Hang(f"no end within {RUN_BOUND:g} s")


@contextmanager
def hang_guard() -> Iterator[None]:
    """Break the block with :class:`Hang` if it outlives :data:`RUN_BOUND` (wall clock).

    A watchdog thread sends SIGUSR2 to the main thread, whose handler raises ``Hang``: that
    interrupts a blocked lock wait, and wakes Trio's loop (which listens for signals). If even
    that fails, ``faulthandler`` dumps every thread's stack and ends the process.
    """
    done = threading.Event()
    main = threading.main_thread().ident
    assert main is not None and threading.get_ident() == main

    def watchdog() -> None:
        if not done.wait(RUN_BOUND):
            signal.pthread_kill(main, signal.SIGUSR2)

    previous = signal.signal(signal.SIGUSR2, _raise_hang)
    faulthandler.dump_traceback_later(2 * RUN_BOUND + 30, exit=True)
    thread = threading.Thread(target=watchdog, name=WATCHDOG, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        faulthandler.cancel_dump_traceback_later()
        signal.signal(signal.SIGUSR2, previous)


WATCHDOG: Final = "ki-injector watchdog"


def choose_targets(locations: list[Location], seen: set[Location] | None = None) -> list[int]:
    """Event numbers (1-based) to interrupt.

    By default the first execution of every distinct place not in ``seen`` (which is then
    updated, so that scenarios sharing code do not interrupt it twice); with
    ``TRIACTOR_KI_SWEEP=all``, every event.
    """
    if SWEEP_ALL:
        return list(range(1, len(locations) + 1))
    seen = set() if seen is None else seen
    targets = []
    for number, location in enumerate(locations, start=1):
        if location not in seen:
            seen.add(location)
            targets.append(number)
    return targets


@attrs.frozen
class Verdict:
    """How one interrupted run ended."""

    target: int
    #: Where the dry run had event ``target``.
    expected: Location
    fired_at: Location | None
    protected: bool | None
    ended: str  # "keyboard-interrupt", "completed", or the repr of another exception
    #: Whether the run had to fire where the dry run had the event (see :func:`sweep`).
    deterministic: bool = True

    @property
    def ok(self) -> bool:
        if self.deterministic and self.fired_at != self.expected:
            return False
        return self.fired_at is None or self.ended.startswith("keyboard-interrupt")

    def describe(self) -> str:
        where = short(self.fired_at)
        kind = {True: "protected", False: "unprotected", None: "outside Trio"}[self.protected]
        if self.deterministic and self.fired_at != self.expected:
            return (
                f"SIGINT at event {self.target} landed at {where}, not where the dry run had "
                f"it ({short(self.expected)}): the runs are not deterministic; {self.ended}"
            )
        return f"SIGINT at event {self.target} ({where}, {kind}): {self.ended}"


def classify(exc: BaseException | None) -> str:
    """``keyboard-interrupt`` if ``exc`` is a KeyboardInterrupt, bare or as the only error."""
    if exc is None:
        return "completed"
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, Hang):
            return f"HANG ({cause})"
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, KeyboardInterrupt):
        return "keyboard-interrupt"
    if isinstance(exc, BaseExceptionGroup):
        matched, rest = exc.split(KeyboardInterrupt)
        if matched is not None and (rest is None or _only_cancelled(rest)):
            return "keyboard-interrupt (wrapped in a group)"
    return f"{type(exc).__name__}: {exc}"


def _only_cancelled(group: BaseExceptionGroup[BaseException]) -> bool:
    _, rest = group.split(trio.Cancelled)
    return rest is None


Injector = LineTracer | StepInjector


def run_trio(scenario: Callable[[], Any], injector: Injector) -> BaseException | None:
    """Run ``scenario`` under Trio with a MockClock and ``injector``; return what it raised."""
    reseed_trio_scheduler()
    clock = trio.testing.MockClock(autojump_threshold=0)
    instruments = [injector] if isinstance(injector, StepInjector) else []

    async def main() -> None:
        _main_task[0] = trio.lowlevel.current_task()
        await scenario()

    with hang_guard(), injector.installed():
        try:
            trio.run(main, clock=clock, instruments=instruments)
        except BaseException as exc:
            return exc
    return None


def warm_up(
    scenario: Callable[[], Any],
    run: Callable[[Callable[[], Any], Injector], BaseException | None] = run_trio,
    after_run: Callable[[], None] | None = None,
) -> None:
    """Run ``scenario`` once, uninterrupted, so that the next run is not the process's first.

    A first run fills caches (loggers by name, lazy imports) that later runs only read: it has
    events that they do not, and a dry run that is a first run would misplace their targets.

    Raises:
        AssertionError: if the scenario fails without any interrupt.
    """
    clean_end = run(scenario, StepInjector(record=False))
    if clean_end is not None:
        raise AssertionError(f"the scenario fails without any interrupt: {clean_end!r}")
    if after_run is not None:
        after_run()


def sweep(
    scenario: Callable[[], Any],
    run: Callable[[Callable[[], Any], Injector], BaseException | None] = run_trio,
    after_run: Callable[[], None] | None = None,
    *,
    steps: bool = False,
    seen: set[Location] | None = None,
    only: Callable[[Location], bool] | None = None,
    deterministic: bool = True,
) -> tuple[int, list[Verdict]]:
    """Interrupt ``scenario`` at each chosen point; return the number of runs and the failures.

    Points are places in triactor's code (see :func:`choose_targets` for which, and ``seen``);
    with ``only``, every execution of the places it accepts; with ``steps``, every Trio task step.
    ``run`` executes the scenario once under an injector (``run_trio`` by default) and returns
    the exception it ended with; ``after_run`` checks for leftovers (threads...) after each run.
    A run fails unless it ends in KeyboardInterrupt, and, if ``deterministic``, unless its signal
    landed where the dry run had the event. A scenario whose course depends on real threads
    (when a sync handler's thread reports back) is not: its runs may reach a place at another
    event number, or end before the target (then nothing fires, and the run is not checked).
    """
    warm_up(scenario, run, after_run)
    dry: Injector = StepInjector() if steps else LineTracer(record=True)
    clean_end = run(scenario, dry)
    if clean_end is not None:
        raise AssertionError(f"the scenario fails without any interrupt: {clean_end!r}")
    if after_run is not None:
        after_run()
    failures: list[Verdict] = []
    if steps:
        targets = list(range(1, dry.count + 1))
    elif only is not None:
        targets = [n for n, where in enumerate(dry.locations, start=1) if only(where)]
    else:
        targets = choose_targets(dry.locations, seen)
    for target in targets:
        tracer: Injector = StepInjector(target) if steps else LineTracer(target=target)
        ended = classify(run(scenario, tracer))
        if after_run is not None:
            after_run()
        expected = dry.locations[target - 1]
        verdict = Verdict(target, expected, tracer.fired_at, tracer.protected, ended, deterministic)
        if not verdict.ok:
            failures.append(verdict)
            gc.collect()  # what a broken run left behind complains now, inside the test
    return len(targets), failures


def threads_other_than(*names: str) -> list[threading.Thread]:
    """Live threads besides the main one and Trio's idle worker cache."""
    return [
        thread
        for thread in threading.enumerate()
        if thread is not threading.main_thread()
        and not thread.name.startswith("Trio thread")
        and thread.name not in names
        and thread.name != WATCHDOG
    ]
