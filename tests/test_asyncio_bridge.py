"""The asyncio bridge: a system opened with ``asyncio=True`` lets handlers await asyncio code
through ``triactor.run_asyncio`` (trio-asyncio underneath), on the mock clock too; without it,
the error says how to turn it on."""

from __future__ import annotations

import asyncio
from typing import ClassVar

import attrs
import pytest
import trio
import trio.testing

import triactor
from triactor import Actor, ChildSpec, Supervisor, handler, open_actor_system

pytest.importorskip("trio_asyncio")


class AsyncioClient:
    """Shaped like redis.asyncio or asyncpg: binds to the running asyncio loop when it
    connects, keeps a background asyncio task, and answers through asyncio primitives."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.requests: asyncio.Queue[tuple[str, asyncio.Future[str]]] | None = None
        self.worker: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.requests = asyncio.Queue()
        self.worker = asyncio.ensure_future(self._serve())

    async def _serve(self) -> None:
        assert self.requests is not None
        while True:
            key, reply = await self.requests.get()
            await asyncio.sleep(2.0)  # the network round trip
            reply.set_result(f"value of {key}")

    async def get(self, key: str) -> str:
        assert self.loop is asyncio.get_running_loop() and self.requests is not None
        reply: asyncio.Future[str] = self.loop.create_future()
        await self.requests.put((key, reply))
        return await reply

    async def close(self) -> None:
        assert self.worker is not None
        self.worker.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.worker


@attrs.frozen
class Get:
    key: str


class Cache(Actor[Get, str]):
    closed: ClassVar[list[str]] = []

    async def on_start(self) -> None:
        self.client = AsyncioClient()
        await triactor.run_asyncio(self.client.connect)

    @handler
    async def get(self, msg: Get) -> str:
        return await triactor.run_asyncio(self.client.get, msg.key)

    async def on_stop(self) -> None:
        await triactor.run_asyncio(self.client.close)
        self.closed.append(self.name)


async def test_a_handler_awaits_an_asyncio_client(autojump_clock: trio.testing.MockClock) -> None:
    async with open_actor_system(asyncio=True) as system:
        cache = await system.spawn(Cache, name="cache")
        started = trio.current_time()
        assert await cache.ask(Get("a")) == "value of a"
        assert trio.current_time() - started == pytest.approx(2.0)  # asyncio time is Trio's
        replies = await triactor.ask_all([(cache, Get(k)) for k in "xyz"])
        assert replies == ["value of x", "value of y", "value of z"]
    assert Cache.closed == ["cache"]  # on_stop closed the client while the loop still ran


async def test_run_asyncio_takes_an_awaitable_and_cancellation_reaches_asyncio(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cancelled: list[str] = []

    async def sleeper() -> str:
        try:
            await asyncio.sleep(100)
        except asyncio.CancelledError:
            cancelled.append("asyncio side")
            raise
        return "slept"

    async with open_actor_system(asyncio=True):
        assert await triactor.run_asyncio(asyncio.sleep(1, result="done")) == "done"
        with trio.move_on_after(5):
            await triactor.run_asyncio(sleeper)
        assert cancelled == ["asyncio side"]


async def test_without_the_loop_the_error_says_how_to_turn_it_on(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_actor_system() as system:
        with pytest.raises(RuntimeError, match=r"asyncio=True"):
            await triactor.run_asyncio(asyncio.sleep, 0)
        with pytest.raises(RuntimeError, match=r"asyncio=True.*--asyncio"):
            await system.spawn(Cache, name="no-loop")


def test_a_portal_and_an_asyncio_program() -> None:
    tree = Supervisor("app", [ChildSpec(Cache, name="cache")])

    async def asyncio_program(portal: triactor.ActorPortal) -> str:
        # From an asyncio program, the portal's blocking calls go to a worker thread.
        reply: str = await asyncio.to_thread(portal.ask, "cache", Get("k"), timeout=30)
        return reply

    with triactor.start_in_thread(tree, asyncio=True) as portal:
        assert asyncio.run(asyncio_program(portal)) == "value of k"
