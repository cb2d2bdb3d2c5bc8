"""``@handler`` routing and validation, sync handlers in threads, and max_concurrency.

This module uses ``from __future__ import annotations``: every handler annotation here is a
string, resolved from the module's globals or from the function that defines the class.
"""

from __future__ import annotations

import threading
import typing
from typing import Any, Union

import attrs
import pytest
import trio
from messages import Item, Ping, Recorder
from trio.testing import MockClock, wait_all_tasks_blocked

import triactor
from triactor import Actor, NoHandler, Overflow, handler

# -- routing ------------------------------------------------------------------------------------


@attrs.frozen
class Animal:
    name: str = "animal"


@attrs.frozen
class Dog(Animal):
    pass


@attrs.frozen
class Puppy(Dog):
    pass


@attrs.frozen
class Cat(Animal):
    pass


@attrs.frozen
class Rock:
    pass


class Zoo(Actor):
    @handler
    async def animal(self, msg: Animal) -> str:
        return "animal"

    @handler
    async def dog(self, msg: Dog) -> str:
        return "dog"


async def test_most_specific_class_in_the_mro_wins(system: triactor.ActorSystem) -> None:
    ref = await system.spawn(Zoo)
    assert await ref.ask(Animal()) == "animal"
    assert await ref.ask(Dog()) == "dog"
    assert await ref.ask(Puppy()) == "dog"
    assert await ref.ask(Cat()) == "animal"
    with pytest.raises(NoHandler, match="Rock"):
        await ref.ask(Rock())


class Unions(Actor):
    @handler
    async def pets(self, msg: Dog | Cat) -> str:
        return f"pet {type(msg).__name__}"

    @handler
    async def others(self, msg: Union[Rock, Item]) -> str:  # noqa: UP007 - the old spelling too
        return f"other {type(msg).__name__}"


async def test_union_annotations_register_each_member(system: triactor.ActorSystem) -> None:
    assert Unions.__triactor_handlers__.handled_types == (Dog, Cat, Rock, Item)
    ref = await system.spawn(Unions)
    assert await ref.ask(Dog()) == "pet Dog"
    assert await ref.ask(Puppy()) == "pet Puppy"
    assert await ref.ask(Cat()) == "pet Cat"
    assert await ref.ask(Rock()) == "other Rock"
    assert await ref.ask(Item(1)) == "other Item"
    with pytest.raises(NoHandler):
        await ref.ask(Animal())


class PlainOverride(Zoo):
    async def dog(self, msg: Dog) -> str:  # overrides by name, without re-decorating
        return "overridden dog"


class DecoratedOverride(Zoo):
    @handler
    async def dog(self, msg: Dog) -> str:
        return "decorated dog"

    @handler
    async def puppy(self, msg: Puppy) -> str:
        return "puppy"


class Retargeted(Zoo):
    @handler
    async def dog(self, msg: Cat) -> str:  # the same method name now takes another type
        return f"retargeted {type(msg).__name__}"


async def test_subclasses_inherit_and_override_handlers(system: triactor.ActorSystem) -> None:
    plain = await system.spawn(PlainOverride)
    assert await plain.ask(Dog()) == "overridden dog"
    assert await plain.ask(Animal()) == "animal"
    decorated = await system.spawn(DecoratedOverride)
    assert await decorated.ask(Dog()) == "decorated dog"
    assert await decorated.ask(Puppy()) == "puppy"
    assert await decorated.ask(Cat()) == "animal"
    base = await system.spawn(Zoo)
    assert await base.ask(Puppy()) == "dog"  # the subclass did not change its parent


async def test_a_redeclared_handler_takes_only_its_new_type(system: triactor.ActorSystem) -> None:
    ref = await system.spawn(Retargeted)
    assert await ref.ask(Cat()) == "retargeted Cat"
    # Zoo.dog was replaced by a method that takes Cat: a Dog must not reach it. It falls back
    # to the next class in its MRO that has a handler.
    assert await ref.ask(Dog()) == "animal"


async def test_string_annotations_naming_local_classes(system: triactor.ActorSystem) -> None:
    @attrs.frozen
    class LocalMessage:
        text: str

    class LocalActor(Actor):
        @handler
        async def local(self, msg: LocalMessage) -> str:
            return msg.text.upper()

        @handler
        async def module_level(self, msg: Dog) -> str:
            return "dog"

    assert LocalActor.__triactor_handlers__.handled_types == (LocalMessage, Dog)
    ref = await system.spawn(LocalActor)
    assert await ref.ask(LocalMessage("hi")) == "HI"
    assert await ref.ask(Dog()) == "dog"


class DoublyQuoted(Actor):
    @handler
    async def on(self, msg: "Dog") -> str:  # noqa: UP037 - quoted again, on purpose
        return "quoted"


async def test_quoted_annotation_under_future_import(system: triactor.ActorSystem) -> None:
    assert DoublyQuoted.__triactor_handlers__.handled_types == (Dog,)
    ref = await system.spawn(DoublyQuoted)
    assert await ref.ask(Puppy()) == "quoted"


def test_explicit_string_annotation_in_a_module_without_future_import() -> None:
    namespace: dict[str, Any] = {"__name__": "no_future"}
    source = (
        "import attrs\n"
        "from triactor import Actor, handler\n"
        "@attrs.frozen\n"
        "class Msg:\n"
        "    pass\n"
        "class A(Actor):\n"
        "    @handler\n"
        "    async def on(self, msg: 'Msg') -> None: ...\n"
    )
    exec(compile(source, "<no_future>", "exec", dont_inherit=True), namespace)
    assert namespace["A"].__triactor_handlers__.handled_types == (namespace["Msg"],)


# -- bad handlers fail at class definition ------------------------------------------------------


def test_handler_without_annotation() -> None:
    with pytest.raises(TypeError, match=r"NoAnnotation\.handle.*'msg'.*annotation"):

        class NoAnnotation(Actor):
            @handler
            async def handle(self, msg) -> None:  # type: ignore[no-untyped-def]
                pass


def test_two_handlers_for_one_type() -> None:
    with pytest.raises(TypeError, match=r"Twice.*'first'.*'second'.*Dog"):

        class Twice(Actor):
            @handler
            async def first(self, msg: Dog) -> None:
                pass

            @handler
            async def second(self, msg: Puppy | Dog) -> None:
                pass


@pytest.mark.parametrize("arity", ["none", "extra"])
def test_handler_with_wrong_arity(arity: str) -> None:
    with pytest.raises(TypeError, match=r"WrongArity\.handle.*exactly \(self, message\)"):
        if arity == "none":

            class WrongArity(Actor):
                @handler
                async def handle(self) -> None:
                    pass

        else:

            class WrongArity(Actor):  # type: ignore[no-redef]
                @handler
                async def handle(self, msg: Dog, extra: int) -> None:
                    pass


def test_keyword_only_message_parameter() -> None:
    with pytest.raises(TypeError, match=r"KeywordOnly\.handle"):

        class KeywordOnly(Actor):
            @handler
            async def handle(self, *, msg: Dog) -> None:
                pass


@pytest.mark.parametrize(
    "annotation", ["42", "object", "Any", "typing.Literal['x']", "Dog | typing.Literal[1]"]
)
def test_non_class_annotation(annotation: str) -> None:
    source = (
        "class NotAClass(Actor):\n"
        "    @handler\n"
        f"    async def handle(self, msg: {annotation}) -> None: ...\n"
    )
    namespace = {"Actor": Actor, "handler": handler, "Dog": Dog, "Any": Any, "typing": typing}
    with pytest.raises(TypeError, match=r"NotAClass\.handle.*not a class"):
        exec(source, namespace)


def test_unresolvable_string_annotation() -> None:
    with pytest.raises(TypeError, match=r"Unresolved\.handle.*NoSuchMessage"):

        class Unresolved(Actor):
            @handler
            async def handle(self, msg: NoSuchMessage) -> None:  # type: ignore[name-defined]  # noqa: F821
                pass


def test_static_method_handler() -> None:
    with pytest.raises(TypeError, match=r"Static\.handle.*plain method"):

        class Static(Actor):
            @staticmethod
            @handler
            async def handle(msg: Dog) -> None:
                pass


def test_handler_decorates_only_callables() -> None:
    with pytest.raises(TypeError, match="method"):
        handler(42)  # type: ignore[type-var]


@pytest.mark.parametrize(
    ("attribute", "value", "error"),
    [
        ("mailbox_capacity", 0, ValueError),
        ("mailbox_capacity", -3, ValueError),
        ("mailbox_capacity", 2.5, TypeError),
        ("mailbox_capacity", True, TypeError),
        ("overflow", "block", TypeError),
        ("max_concurrency", 0, ValueError),
        ("max_concurrency", None, TypeError),
        ("shutdown_timeout", -1, ValueError),
        ("shutdown_timeout", float("nan"), ValueError),
        ("shutdown_timeout", "5", TypeError),
    ],
)
def test_bad_class_options_fail_at_class_definition(
    attribute: str, value: object, error: type[Exception]
) -> None:
    with pytest.raises(error, match=rf"BadOptions.*{attribute}"):
        type("BadOptions", (Actor,), {attribute: value})


def test_good_class_options() -> None:
    cls = type(
        "GoodOptions",
        (Actor,),
        {
            "mailbox_capacity": 1,
            "overflow": Overflow.DROP_OLDEST,
            "max_concurrency": 8,
            "shutdown_timeout": 0,
        },
    )
    assert issubclass(cls, Actor)


# -- sync handlers ------------------------------------------------------------------------------

WAIT = 10.0  # a safety net only: every wait below is released by an event, never by time


class Gates:
    """Thread events shared by a Blocking actor and the test, one pair per item value."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []
        self.entered = {n: threading.Event() for n in range(4)}
        self.release = {n: threading.Event() for n in range(4)}
        self.threads: set[int] = set()


async def wait_in_thread(event: threading.Event) -> None:
    assert await trio.to_thread.run_sync(event.wait, WAIT), "the event was never set"


class Blocking(Actor):
    """Sync handlers: each item parks its worker thread until the test releases it."""

    def __init__(self, gates: Gates) -> None:
        self.gates = gates

    @handler
    def work(self, msg: Item) -> int:
        gates = self.gates
        gates.threads.add(threading.get_ident())
        gates.events.append(("start", msg.value))
        gates.entered[msg.value].set()
        assert gates.release[msg.value].wait(WAIT)
        gates.events.append(("end", msg.value))
        return msg.value * 10

    @handler
    def fail(self, msg: Dog) -> None:
        raise LookupError(msg.name)


async def test_sync_handler_runs_in_a_thread_while_others_answer() -> None:
    gates = Gates()
    async with triactor.open_actor_system(check_messages=True) as system:
        blocking = await system.spawn(Blocking, gates)
        other = await system.spawn(Recorder)
        replies: list[int] = []
        with trio.fail_after(WAIT):
            async with trio.open_nursery() as nursery:

                async def ask_blocking() -> None:
                    replies.append(await blocking.ask(Item(3)))

                nursery.start_soon(ask_blocking)
                await wait_in_thread(gates.entered[3])
                # The worker thread is blocked; the loop is free for other actors.
                for _ in range(3):
                    assert await other.ask(Ping()) == "pong"
                assert replies == []
                gates.release[3].set()
        assert replies == [30]
        assert threading.get_ident() not in gates.threads


async def test_sync_actor_takes_one_message_at_a_time() -> None:
    gates = Gates()
    log = gates.events
    async with triactor.open_actor_system(check_messages=True) as system:
        ref = await system.spawn(Blocking, gates)
        with trio.fail_after(WAIT):
            await ref.tell(Item(1))
            await ref.tell(Item(2))
            await wait_in_thread(gates.entered[1])
            await wait_all_tasks_blocked()
            # The second message waits in the mailbox while the first runs in its thread.
            assert ref.statistics().mailbox.depth == 1
            assert log == [("start", 1)]
            gates.release[1].set()
            await wait_in_thread(gates.entered[2])
            assert log == [("start", 1), ("end", 1), ("start", 2)]
            gates.release[2].set()
            gates.release[3].set()
            assert await ref.ask(Item(3)) == 30
        assert log == [("start", 1), ("end", 1), ("start", 2), ("end", 2), ("start", 3), ("end", 3)]


async def test_sync_handler_error_reaches_the_asker() -> None:
    with pytest.raises(LookupError, match="rex"):
        async with triactor.open_actor_system(check_messages=True) as system:
            ref = await system.spawn(Blocking, Gates(), name="sync")
            with pytest.raises(LookupError, match="rex") as info:
                await ref.ask(Dog("rex"))
            assert any("'/sync'" in note and "Dog" in note for note in info.value.__notes__)
            await trio.sleep_forever()


# -- max_concurrency ----------------------------------------------------------------------------


@attrs.define
class Meter:
    """What a Gated actor reports: items in start order, handlers running now and at most."""

    started: list[int] = attrs.Factory(list)
    active: int = 0
    peak: int = 0


class Gated(Actor):
    """Each item waits for one step from the test; the meter counts how many run at once."""

    def __init__(self, steps: trio.MemoryReceiveChannel[None], meter: Meter) -> None:
        self.steps = steps
        self.meter = meter

    @handler
    async def item(self, msg: Item) -> int:
        meter = self.meter
        meter.started.append(msg.value)
        meter.active += 1
        meter.peak = max(meter.peak, meter.active)
        try:
            await self.steps.receive()
        finally:
            meter.active -= 1
        return msg.value


async def test_max_concurrency_three_runs_three_and_the_fourth_waits(
    system: triactor.ActorSystem, autojump_clock: MockClock
) -> None:
    steps_in, steps_out = trio.open_memory_channel[None](0)
    meter = Meter()
    ref = await system.spawn(Gated, steps_out, meter, max_concurrency=3)
    replies: list[int] = []
    async with trio.open_nursery() as nursery:
        for value in range(5):

            async def ask(value: int = value) -> None:
                replies.append(await ref.ask(Item(value)))

            nursery.start_soon(ask)
            await wait_all_tasks_blocked()
        assert meter.started == [0, 1, 2]
        assert meter.active == 3
        await steps_in.send(None)
        await wait_all_tasks_blocked()
        assert meter.started == [0, 1, 2, 3]
        assert replies == [0]
        assert meter.active == 3
        for _ in range(4):
            await steps_in.send(None)
    assert meter.started == [0, 1, 2, 3, 4]
    assert sorted(replies) == [0, 1, 2, 3, 4]
    assert meter.peak == 3


async def test_max_concurrency_one_never_overlaps(
    system: triactor.ActorSystem, autojump_clock: MockClock
) -> None:
    steps_in, steps_out = trio.open_memory_channel[None](0)
    meter = Meter()
    ref = await system.spawn(Gated, steps_out, meter, max_concurrency=1)
    for value in range(4):
        await ref.tell(Item(value))
    for done in range(4):
        await wait_all_tasks_blocked()
        assert meter.started == list(range(done + 1))
        assert meter.active == 1
        await steps_in.send(None)
    await wait_all_tasks_blocked()
    assert meter.peak == 1
    assert ref.statistics().processed == 4


async def test_concurrent_actor_drains_on_shutdown(autojump_clock: MockClock) -> None:
    steps_in, steps_out = trio.open_memory_channel[None](10)
    meter = Meter()
    async with triactor.open_actor_system(check_messages=True) as system:
        ref = await system.spawn(Gated, steps_out, meter, max_concurrency=2)
        for value in range(5):
            await ref.tell(Item(value))
        for _ in range(5):
            steps_in.send_nowait(None)
    assert meter.started == [0, 1, 2, 3, 4]
    assert meter.peak <= 2
    assert system.dead_letters.count == 0
    assert not ref.is_alive


async def test_concurrent_actor_crash_is_raised_as_the_users_own_exception(
    autojump_clock: MockClock,
) -> None:
    class Fragile(Actor):
        max_concurrency = 4

        @handler
        async def item(self, msg: Item) -> None:
            await trio.sleep(msg.value)
            raise LookupError(f"item {msg.value}")

    with pytest.raises(LookupError, match="item 1"):
        async with triactor.open_actor_system(check_messages=True) as system:
            ref = await system.spawn(Fragile)
            for value in (1, 2, 3):
                await ref.tell(Item(value))
            await trio.sleep_forever()
    assert trio.current_time() == pytest.approx(1)


async def test_concurrent_actor_cancelled_while_waiting_for_a_slot_loses_nothing(
    autojump_clock: MockClock,
) -> None:
    _steps_in, steps_out = trio.open_memory_channel[None](0)  # no step ever comes
    meter = Meter()
    results: dict[int, object] = {}
    with trio.fail_after(100):
        async with (
            trio.open_nursery() as askers,
            triactor.open_actor_system(check_messages=True) as system,
        ):
            ref = await system.spawn(Gated, steps_out, meter, max_concurrency=2, shutdown_timeout=1)

            async def asker(value: int) -> None:
                try:
                    results[value] = await ref.ask(Item(value))
                except triactor.ActorStopped:
                    results[value] = "stopped"

            for value in range(4):  # 0 and 1 run, 2 waits for a slot, 3 stays queued
                askers.start_soon(asker, value)
                await wait_all_tasks_blocked()
            assert meter.started == [0, 1]
        # The shutdown cancelled the actor after its timeout: every asker has an answer.
    assert results == {0: "stopped", 1: "stopped", 2: "stopped", 3: "stopped"}
    assert sorted(d.message.value for d in system.dead_letters) == [0, 1, 2, 3]  # type: ignore[attr-defined]
