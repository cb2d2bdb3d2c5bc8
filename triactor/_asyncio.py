"""The asyncio bridge: awaiting asyncio libraries (aiohttp, asyncpg, redis.asyncio) in handlers.

Handlers run on Trio, where an asyncio client fails with "no running event loop". With the
``asyncio`` extra (``pip install 'triactor[asyncio]'``, which brings trio-asyncio), an actor
system opened with ``asyncio=True`` runs an asyncio event loop on top of its Trio loop, and
``await triactor.run_asyncio(fn, *args)`` runs an asyncio coroutine function there from any
handler. Libraries built on anyio (httpx, the OpenAI SDK) need none of this: they run on Trio
as they are.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from types import ModuleType
from typing import Any, ParamSpec, TypeVar, overload

__all__ = ["open_asyncio_loop", "run_asyncio"]

P = ParamSpec("P")
T = TypeVar("T")

_HOW = (
    "open the actor system with asyncio=True: open_actor_system(asyncio=True), "
    "triactor.run(tree, asyncio=True), triactor.start_in_thread(tree, asyncio=True) or "
    "`triactor run --asyncio`"
)


def _trio_asyncio() -> ModuleType:
    try:
        return importlib.import_module("trio_asyncio")
    except ImportError as exc:
        raise RuntimeError(
            "the asyncio bridge needs trio-asyncio: pip install 'triactor[asyncio]'"
        ) from exc


@asynccontextmanager
async def open_asyncio_loop() -> AsyncIterator[Any]:
    """Run an asyncio event loop on the current Trio loop for the duration of the block.

    Raises:
        RuntimeError: if trio-asyncio is not installed.
    """
    async with _trio_asyncio().open_loop() as loop:
        yield loop


def _loop() -> Any:
    trio_asyncio = _trio_asyncio()
    loop = trio_asyncio.current_loop.get()
    if loop is None:
        # A task that did not inherit the loop (started from a portal call, say): the loop of
        # the system whose actor is running.
        from .actors._cell import current_cell

        cell = current_cell.get()
        loop = cell.system.asyncio_loop if cell is not None else None
    if loop is None:
        raise RuntimeError(f"no asyncio loop runs here; to await asyncio libraries, {_HOW}")
    return loop


@overload
async def run_asyncio(fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T: ...


@overload
async def run_asyncio(fn: Awaitable[T], /) -> T: ...


async def run_asyncio(fn: Any, /, *args: Any, **kwargs: Any) -> Any:
    """Await an asyncio coroutine function (or awaitable) from Trio code, such as a handler.

    ``fn(*args, **kwargs)`` is called and awaited inside the system's asyncio loop, so an
    asyncio client (``redis.asyncio``, ``asyncpg``, ``aiohttp``) works there::

        class Cache(Actor):
            async def on_start(self) -> None:
                self.redis = redis.asyncio.Redis()

            @handler
            async def get(self, msg: Get) -> bytes | None:
                return await triactor.run_asyncio(self.redis.get, msg.key)

            async def on_stop(self) -> None:
                await triactor.run_asyncio(self.redis.aclose)

    Prefer passing the function and its arguments: the call then happens inside asyncio, where
    clients that look up the running loop when called find it. Trio cancellation reaches the
    asyncio side (it is cancelled too). For asyncio context managers and iterators, use
    ``trio_asyncio.aio_as_trio`` directly in the same system.

    Raises:
        RuntimeError: if the actor system was not opened with ``asyncio=True``, or the
            ``asyncio`` extra (trio-asyncio) is not installed.
        Exception: whatever the asyncio code raised.
    """
    loop = _loop()
    wrap = _trio_asyncio().aio_as_trio
    if callable(fn):
        return await wrap(fn, loop=loop)(*args, **kwargs)
    if args or kwargs:
        raise TypeError("run_asyncio(awaitable) takes no arguments; pass the function instead")
    return await wrap(fn, loop=loop)
