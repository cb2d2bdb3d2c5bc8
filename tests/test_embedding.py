"""Embedding an actor system: in a Trio program, and in a synchronous program through
``start_in_thread`` (ask/tell from many threads, errors surfacing, clean shutdown)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import attrs
import pytest
import trio
from launcher_fixtures import apps, failing

import triactor
from examples.counter import Add, Counter, Total, tree
from triactor import (
    Actor,
    ActorNotFound,
    ActorStopped,
    ActorSystem,
    ChildSpec,
    MailboxFull,
    Overflow,
    RestartIntensityExceeded,
    Supervisor,
    handler,
    open_actor_system,
)
from triactor.launcher import ActorPortal, start_in_thread

WAIT = 10.0  # seconds: the bound on any wait on a real clock

# -- the three ways to run, as docs/guides/embedding.md shows them (its snippets run too) ------


async def test_readme_trio_program() -> None:
    async with open_actor_system() as system:
        await system.spawn(tree())
        counter = system.lookup("counter")
        await counter.tell(Add(2))
        assert await counter.ask(Total()) == 2


def test_readme_sync_program() -> None:
    with triactor.launcher.start_in_thread(tree()) as portal:
        portal.tell("counter", Add(2))
        assert portal.ask("counter", Total(), timeout=1.0) == 2


# -- start_in_thread -------------------------------------------------------------------------------


@attrs.frozen
class Fail:
    text: str


@attrs.frozen
class Slow:
    seconds: float


class Flaky(Actor):
    """Raises on Fail; on Slow, sets ``busy`` (a thread event) and sleeps; logs its stops."""

    def __init__(self, stopped: list[str], busy: threading.Event) -> None:
        self.stopped = stopped
        self.busy = busy

    @handler
    async def fail(self, msg: Fail) -> None:
        raise ValueError(msg.text)

    @handler
    async def slow(self, msg: Slow) -> str:
        self.busy.set()
        await trio.sleep(msg.seconds)
        return "done"

    async def on_stop(self) -> None:
        self.stopped.append(self.name)


def app_tree(stopped: list[str] | None = None, busy: threading.Event | None = None) -> Supervisor:
    flaky_args = ([] if stopped is None else stopped, busy or threading.Event())
    return Supervisor(
        "app",
        [ChildSpec(Counter, name="counter"), ChildSpec(Flaky, args=flaky_args, name="flaky")],
        max_restarts=100,
        within=60,
    )


def test_ask_and_tell_from_many_threads_at_once() -> None:
    threads, rounds = 8, 50
    with start_in_thread(app_tree()) as portal:
        counter = portal.lookup("counter")

        def client(n: int) -> list[int]:
            seen = []
            for _ in range(rounds):
                portal.tell("counter", Add(1))
                seen.append(portal.ask(counter, Total(), timeout=WAIT))
            return seen

        with ThreadPoolExecutor(threads) as pool:
            results = list(pool.map(client, range(threads)))
        assert portal.ask("counter", Total(), timeout=WAIT) == threads * rounds
    for seen in results:
        assert seen == sorted(seen)  # each thread sees its own adds in order
        assert 0 < seen[-1] <= threads * rounds


def test_a_handler_error_is_raised_in_the_asking_thread() -> None:
    with start_in_thread(app_tree()) as portal:
        with pytest.raises(ValueError, match="bad input") as info:
            portal.ask("flaky", Fail("bad input"), timeout=WAIT)
        assert "raised in actor '/app/flaky' while handling Fail" in info.value.__notes__
        # The supervisor restarted the actor: the portal keeps working.
        assert portal.ask("flaky", Slow(0), timeout=WAIT) == "done"


def test_ask_timeout_and_unknown_names_raise_in_the_caller() -> None:
    with start_in_thread(app_tree()) as portal:
        with pytest.raises(trio.TooSlowError, match=r"'/app/flaky' got no reply within 0\.05 s"):
            portal.ask("flaky", Slow(0.2), timeout=0.05)
        with pytest.raises(ActorNotFound, match="no live actor named 'nobody'"):
            portal.tell("nobody", Add(1))
        with pytest.raises(TypeError, match="expected an actor name, path or ActorRef"):
            portal.ask(42, Total())  # type: ignore[arg-type]


def test_a_full_mailbox_refuses_tell_and_try_tell() -> None:
    busy = threading.Event()
    spec = ChildSpec(
        Flaky, args=([], busy), name="tiny", mailbox_capacity=1, overflow=Overflow.FAIL
    )
    with start_in_thread(Supervisor("app", [spec])) as portal:
        portal.tell("tiny", Slow(0.2))
        assert busy.wait(WAIT)  # being handled: the mailbox is empty again
        assert portal.try_tell("tiny", Slow(0.2)) is True  # queued: the mailbox is now full
        assert portal.try_tell("tiny", Slow(0.2)) is False
        with pytest.raises(MailboxFull):
            portal.tell("tiny", Slow(0.2))


def test_call_runs_a_function_with_the_system() -> None:
    with start_in_thread(app_tree()) as portal:
        ref = portal.call(ActorSystem.start_child, "app", ChildSpec(Counter, name="extra"))
        portal.tell(ref, Add(3))
        assert portal.ask("extra", Total(), timeout=WAIT) == 3
        assert portal.statistics().actors == 4


def test_leaving_the_block_shuts_down_gracefully_and_joins_the_thread() -> None:
    stopped: list[str] = []
    with start_in_thread(app_tree(stopped), thread_name="embedded-actors") as portal:
        assert "running, on thread 'embedded-actors'" in repr(portal)
        thread = next(t for t in threading.enumerate() if t.name == "embedded-actors")
    assert not thread.is_alive()
    assert stopped == ["flaky"]
    assert repr(portal) == "<ActorPortal to tree 'app' stopped, on thread 'embedded-actors'>"
    with pytest.raises(ActorStopped, match="the actor system of tree 'app' has stopped"):
        portal.ask("counter", Total())
    result = portal.stop()  # again: just the same result
    assert result.clean and result.stopped_by == "portal closed"


def test_a_root_that_gives_up_surfaces_on_the_next_call_and_on_leaving() -> None:
    fragile = Supervisor("root", [ChildSpec(Flaky, args=([], threading.Event()))], max_restarts=0)
    with pytest.raises(RestartIntensityExceeded) as left, start_in_thread(fragile) as portal:
        portal.tell("Flaky", Fail("fatal"))  # no restart allowed: the root gives up
        with pytest.raises(RestartIntensityExceeded) as waited:
            portal.wait(timeout=WAIT)
        assert waited.value.supervisor == "/root"
        assert isinstance(waited.value.last_error, ValueError)
        with pytest.raises(RestartIntensityExceeded):
            portal.ask("Flaky", Slow(0))
        assert repr(portal).startswith("<ActorPortal to tree 'root' failed with")
    assert left.value is waited.value


def test_an_error_in_the_block_keeps_its_own_exception() -> None:
    stopped: list[str] = []
    with pytest.raises(KeyError, match="mine"), start_in_thread(app_tree(stopped)):
        raise KeyError("mine")
    assert stopped == ["flaky"]  # the system was still shut down


def test_a_root_that_gives_up_while_starting_is_raised_by_start_in_thread() -> None:
    # The crasher crashes right after each start: the root may give up before or after the
    # portal is handed out; either way the error reaches this thread.
    with pytest.raises(RestartIntensityExceeded), start_in_thread(failing.gives_up) as portal:
        portal.wait(timeout=WAIT)


def test_a_start_failure_is_raised_by_start_in_thread() -> None:
    class Broken(Actor):
        async def on_start(self) -> None:
            raise OSError("no database")

    tree = Supervisor("app", [ChildSpec(Broken, name="broken")], max_restarts=0)
    started = time.monotonic()
    with pytest.raises(RestartIntensityExceeded) as info, start_in_thread(tree):
        pytest.fail("the block must not run")
    assert isinstance(info.value.last_error, OSError)
    assert time.monotonic() - started < WAIT


def test_portal_calls_from_the_actor_thread_are_refused() -> None:
    with start_in_thread(app_tree()) as portal:

        async def call_back(system: ActorSystem) -> None:
            portal.ask("counter", Total())

        with pytest.raises(RuntimeError, match="never from the actor system's own Trio thread"):
            portal.call(call_back)


def test_wait_times_out_while_the_system_runs() -> None:
    with start_in_thread(app_tree()) as portal:
        with pytest.raises(TimeoutError, match="still running"):
            portal.wait(timeout=0.01)
        assert isinstance(portal, ActorPortal)


def test_start_in_thread_rejects_bad_input() -> None:
    with pytest.raises(TypeError, match="start_in_thread takes a Supervisor"):
        start_in_thread(Counter).__enter__()  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shutdown_timeout must be >= 0"):
        start_in_thread(tree(), shutdown_timeout=-1).__enter__()


def test_shutdown_timeout_bounds_leaving_the_block() -> None:
    stopped: list[str] = []
    busy = threading.Event()
    started = time.monotonic()
    with start_in_thread(app_tree(stopped, busy), shutdown_timeout=0.2) as portal:
        portal.tell("flaky", Slow(60))  # holds the actor until it is cancelled
        assert busy.wait(WAIT)
    assert time.monotonic() - started < WAIT
    result = portal.wait()
    assert result.aborted_by == "deadline"
    assert stopped == ["flaky"]


def test_a_tree_that_stops_by_itself_ends_the_portal_cleanly() -> None:
    with start_in_thread(apps.finite_tree()) as portal:
        result = portal.wait(timeout=WAIT)
    assert result.clean and result.stopped_by is None
    for _ in range(20):  # leaving while the tree is still stopping by itself is fine too
        with start_in_thread(apps.finite_tree()):
            pass
