"""Pools: real objects (connections) lent out by priority."""

import itertools

import trio

from triactor import ResourcePool

_ids = itertools.count(1)


class Connection:
    """Stands for a database connection: costly to open, one user at a time."""

    def __init__(self) -> None:
        self.id = next(_ids)
        self.healthy = True

    async def query(self, sql: str) -> str:
        await trio.sleep(0.01)
        return f"connection {self.id}: {sql}"

    async def aclose(self) -> None:
        self.healthy = False


async def connect() -> Connection:
    await trio.sleep(0.1)  # the handshake
    return Connection()


async def is_healthy(conn: Connection) -> bool:
    return conn.healthy


async def main() -> None:
    async with ResourcePool(
        connect, 2, classes={"interactive": 0.0, "reports": 0.2}, check=is_healthy
    ) as db:

        async def run(priority: str, n: int) -> None:
            async with db.acquire(priority=priority) as conn:
                await conn.query(f"select {n}")

        async with trio.open_nursery() as nursery:
            for n in range(10):
                nursery.start_soon(run, "reports", n)
                nursery.start_soon(run, "interactive", n)

        stats = db.statistics()
        print(f"{stats.created} connections opened for 20 queries")
        assert stats.created == 2  # two connections, reused for all 20 queries
    # Leaving the block closed every connection.


if __name__ == "__main__":
    trio.run(main)
