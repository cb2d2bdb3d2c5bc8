"""Shared fixtures for the core runtime tests.

``autojump_clock`` (``MockClock(autojump_threshold=0)``) comes from pytest-trio: request it in any
test where time matters.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest
from loguru import logger
from redis_support import private_server, session_server_url, unique_prefix

import triactor
from triactor import _logging as triactor_logging
from triactor import open_actor_system
from triactor.remote._server import PrivateServer

if TYPE_CHECKING:
    from loguru import Message


@pytest.fixture
async def system() -> AsyncIterator[triactor.ActorSystem]:
    """An actor system that proves every message used in a test survives a cattrs round trip."""
    async with open_actor_system(check_messages=True) as system:
        yield system


@pytest.fixture
def log_records() -> Iterator[list[dict[str, object]]]:
    """Every loguru record emitted during the test, by triactor or through loguru's logger."""
    records: list[dict[str, object]] = []

    def keep(message: Message) -> None:
        records.append(message.record)  # type: ignore[arg-type]

    triactor_sink = triactor_logging.add_sink(keep, level=10)
    global_sink = logger.add(keep, level="DEBUG")
    try:
        yield records
    finally:
        logger.remove(global_sink)
        triactor_logging.remove_sink(triactor_sink)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The test run's Redis: ``$TRIACTOR_REDIS_URL``, else a private server for the session.

    Tests share it: use ``redis_prefix`` for keys and never flush it. Fails, never skips, when no
    server binary is found (install ``triactor[server]`` or ``redis-server``).
    """
    with session_server_url() as url:
        yield url


@pytest.fixture
def redis_prefix(request: pytest.FixtureRequest) -> str:
    """A key prefix of this test's own on the shared server."""
    return unique_prefix(request.node.name)


@pytest.fixture
def private_redis() -> Iterator[PrivateServer]:
    """A private server with AOF on, for this test alone: it may restart or kill it."""
    with private_server(aof=True) as server:
        yield server
