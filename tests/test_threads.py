"""Refs used from other threads: ``try_tell`` works from a plain ``def`` handler and from any
thread without a Trio loop (through the system's loop); ``tell``, ``ask`` and ``stop`` refuse
there before anything is sent; and the target keeps handling messages afterwards.

These tests use real threads and no timed waits, so they run on the real clock."""

from __future__ import annotations

import threading

import attrs
import trio

from triactor import Actor, ActorRef, DeadLetterReason, handler, open_actor_system


@attrs.frozen
class Note:
    text: str


@attrs.frozen
class Relay:
    """Handled in a worker thread: forwards ``text`` to the actor named ``to``."""

    to: str
    text: str


@attrs.frozen
class Notes:
    pass


class Notebook(Actor):
    def __init__(self) -> None:
        self.notes: list[str] = []

    @handler
    async def note(self, msg: Note) -> None:
        self.notes.append(msg.text)

    @handler
    async def all_notes(self, msg: Notes) -> list[str]:
        return list(self.notes)


class SyncRelay(Actor):
    @handler
    def relay(self, msg: Relay) -> bool:  # a plain def: runs in a worker thread
        return self.system.lookup(msg.to).try_tell(Note(msg.text))


def in_thread(fn: object) -> list[object]:
    """Run ``fn`` in a new plain thread; return [its result] or [the exception it raised]."""
    out: list[object] = []

    def main() -> None:
        try:
            out.append(fn())  # type: ignore[operator]
        except BaseException as exc:
            out.append(exc)

    thread = threading.Thread(target=main)
    thread.start()
    return out if thread.join(10) is None and not thread.is_alive() else [TimeoutError()]


async def test_try_tell_from_a_sync_handler_reaches_the_target() -> None:
    async with open_actor_system(check_messages=True) as system:
        notebook = await system.spawn(Notebook, name="notebook")
        relay = await system.spawn(SyncRelay)
        assert await relay.ask(Relay("notebook", "from a thread")) is True
        await notebook.tell(Note("after"))  # the target still wakes for new messages
        assert await notebook.ask(Notes()) == ["from a thread", "after"]


async def test_try_tell_from_a_plain_thread_works_and_the_target_keeps_going() -> None:
    async with open_actor_system(check_messages=True) as system:
        notebook = await system.spawn(Notebook)
        await notebook.ask(Notes())  # the actor now waits on its empty mailbox
        results = await trio.to_thread.run_sync(
            in_thread, lambda: [notebook.try_tell(Note(str(n))) for n in range(3)]
        )
        assert results == [[True, True, True]]
        await notebook.tell(Note("after"))
        assert await notebook.ask(Notes()) == ["0", "1", "2", "after"]


async def test_tell_ask_and_stop_from_another_thread_refuse_before_sending() -> None:
    async with open_actor_system() as system:
        notebook: ActorRef[Note | Notes, list[str] | None] = await system.spawn(Notebook)
        await notebook.ask(Notes())

        def misuse() -> list[BaseException]:
            errors: list[BaseException] = []
            for call in (
                lambda: notebook.tell(Note("x")),
                lambda: notebook.ask(Notes()),
                lambda: notebook.stop(),
            ):
                coroutine = call()
                try:
                    coroutine.send(None)
                except BaseException as exc:
                    errors.append(exc)
                finally:
                    coroutine.close()
            return errors

        [errors] = await trio.to_thread.run_sync(in_thread, misuse)
        assert isinstance(errors, list)
        assert [type(exc) for exc in errors] == [RuntimeError] * 3
        assert "ref.tell Note" in str(errors[0]) and "nothing was sent" in str(errors[0])
        assert "try_tell" in str(errors[0]) and "start_in_thread" in str(errors[0])
        assert notebook.statistics().mailbox.depth == 0
        await notebook.tell(Note("after"))
        assert await notebook.ask(Notes()) == ["after"]


async def test_a_ref_used_from_another_trio_loop_refuses_before_sending() -> None:
    async with open_actor_system() as system:
        notebook = await system.spawn(Notebook)

        async def other_loop() -> list[str]:
            caught: list[str] = []
            try:
                await notebook.tell(Note("tell"))
            except RuntimeError as exc:
                caught.append(str(exc))
            try:
                notebook.try_tell(Note("try_tell"))
            except RuntimeError as exc:
                caught.append(str(exc))
            return caught

        [caught] = await trio.to_thread.run_sync(in_thread, lambda: trio.run(other_loop))
        assert isinstance(caught, list) and len(caught) == 2
        assert "another Trio loop" in caught[1]
        await notebook.tell(Note("after"))
        assert await notebook.ask(Notes()) == ["after"]


def test_try_tell_after_the_system_stopped_goes_to_dead_letters() -> None:
    kept: list[object] = []

    async def main() -> None:
        async with open_actor_system() as system:
            kept.append(system)
            kept.append(await system.spawn(Notebook, name="gone"))

    trio.run(main)
    system, ref = kept
    assert ref.try_tell(Note("late")) is False  # type: ignore[attr-defined]
    [letter] = list(system.dead_letters)  # type: ignore[attr-defined]
    assert letter.reason is DeadLetterReason.ACTOR_STOPPED and letter.message == Note("late")
