"""``triactor.ask_all``: replies in request order, the fan-out costs the slowest reply, the
first failure cancels the rest and is raised as itself, and a timeout names who was late."""

from __future__ import annotations

import attrs
import pytest
import trio
import trio.testing

import triactor
from triactor import (
    Actor,
    ActorStopped,
    ChildSpec,
    DeadLetterReason,
    Supervisor,
    handler,
    open_actor_system,
)


@attrs.frozen
class Fetch:
    item: str
    seconds: float
    fail: bool = False


class FetchFailed(Exception):
    pass


class Fetcher(Actor[Fetch, str]):
    def __init__(self, handled: list[str]) -> None:
        self.handled = handled

    @handler
    async def fetch(self, msg: Fetch) -> str:
        await trio.sleep(msg.seconds)
        if msg.fail:
            raise FetchFailed(f"cannot fetch {msg.item}")
        self.handled.append(msg.item)
        return f"{self.name}:{msg.item}"


async def test_replies_come_in_request_order_and_cost_the_slowest(
    autojump_clock: trio.testing.MockClock,
) -> None:
    handled: list[str] = []
    async with open_actor_system(check_messages=True) as system:
        a = await system.spawn(Fetcher, handled, name="a")
        b = await system.spawn(Fetcher, handled, name="b")
        c = await system.spawn(Fetcher, handled, name="c")
        started = trio.current_time()
        replies = await triactor.ask_all(
            [(a, Fetch("x", 3.0)), (b, Fetch("y", 1.0)), (c, Fetch("z", 2.0))], timeout=10
        )
        assert trio.current_time() - started == pytest.approx(3.0)
        assert replies == ["a:x", "b:y", "c:z"]
        assert handled == ["y", "z", "x"]
        # One actor several times: it handles them one at a time, the order still holds.
        replies = await triactor.ask_all((a, Fetch(str(n), 1.0)) for n in range(3))
        assert replies == ["a:0", "a:1", "a:2"]
        assert await triactor.ask_all([]) == []


async def test_the_first_failure_cancels_the_rest_and_is_raised_as_itself(
    autojump_clock: trio.testing.MockClock,
) -> None:
    handled: list[str] = []
    async with open_actor_system(check_messages=True) as system:
        names = [f"f{n}" for n in range(3)]
        specs = [ChildSpec(Fetcher, args=(handled,), name=name) for name in names]
        await system.spawn(Supervisor("root", specs))  # f1 crashes: it is restarted
        refs = [system.lookup(name) for name in names]
        started = trio.current_time()
        with pytest.raises(FetchFailed, match="cannot fetch bad") as caught:
            await triactor.ask_all(
                [
                    (refs[0], Fetch("slow", 10.0)),
                    (refs[1], Fetch("bad", 1.0, fail=True)),
                    (refs[2], Fetch("slower", 20.0)),
                ]
            )
        assert trio.current_time() - started == pytest.approx(1.0)  # nobody waited for the rest
        assert any("'/root/f1' while handling Fetch" in note for note in caught.value.__notes__)
        await trio.sleep(30)
        # The cancelled asks were abandoned, not the work: their replies came late.
        late = [d for d in system.dead_letters if d.reason is DeadLetterReason.LATE_REPLY]
        assert sorted(d.target for d in late) == ["/root/f0", "/root/f2"]
        assert sorted(handled) == ["slow", "slower"]


async def test_a_stopped_target_fails_the_fan_out(autojump_clock: trio.testing.MockClock) -> None:
    async with open_actor_system() as system:
        live = await system.spawn(Fetcher, [], name="live")
        gone = await system.spawn(Fetcher, [], name="gone")
        await gone.stop()
        with pytest.raises(ActorStopped, match="/gone"):
            await triactor.ask_all([(live, Fetch("a", 5.0)), (gone, Fetch("b", 0.0))])


async def test_a_timeout_names_the_targets_that_had_not_answered(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_actor_system() as system:
        refs = [await system.spawn(Fetcher, [], name=f"w{n}") for n in range(14)]
        requests = [(ref, Fetch(ref.name, 1.0 if n < 2 else 60.0)) for n, ref in enumerate(refs)]
        started = trio.current_time()
        with pytest.raises(trio.TooSlowError) as caught:
            await triactor.ask_all(requests, timeout=5)
        assert trio.current_time() - started == pytest.approx(5.0)
    text = str(caught.value)
    assert "12 of 14 requests got no reply within 5 s" in text
    assert "/w2 (Fetch)" in text and "/w11 (Fetch)" in text and "/w1 " not in text
    assert "and 2 more" in text


async def test_bad_requests_are_refused_before_anything_is_sent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    handled: list[str] = []
    async with open_actor_system() as system:
        ref = await system.spawn(Fetcher, handled)
        with pytest.raises(TypeError, match="item 1"):
            await triactor.ask_all([(ref, Fetch("a", 0.0)), ("name", Fetch("b", 0.0))])  # type: ignore[list-item]
        await trio.sleep(1)
    assert handled == []
