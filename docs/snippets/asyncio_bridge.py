"""asyncio libraries inside actors: open the system with asyncio=True, await via run_asyncio."""

import asyncio

import attrs
import trio

import triactor
from triactor import Actor, handler, open_actor_system


class AsyncioClient:
    """Stands for an asyncio-only library (aiohttp, asyncpg, redis.asyncio)."""

    async def get(self, key: str) -> bytes:
        asyncio.get_running_loop()  # what fails on plain Trio: "no running event loop"
        await asyncio.sleep(0.1)
        return key.encode()

    async def aclose(self) -> None:
        await asyncio.sleep(0)


@attrs.frozen
class Get:
    key: str


class Cache(Actor[Get, bytes]):
    async def on_start(self) -> None:
        self.client = AsyncioClient()

    @handler
    async def get(self, msg: Get) -> bytes:
        return await triactor.run_asyncio(self.client.get, msg.key)

    async def on_stop(self) -> None:
        await triactor.run_asyncio(self.client.aclose)


async def main() -> None:
    async with open_actor_system(asyncio=True) as system:  # needs triactor[asyncio]
        cache = await system.spawn(Cache, name="cache")
        assert await cache.ask(Get("answer")) == b"answer"


if __name__ == "__main__":
    trio.run(main)
