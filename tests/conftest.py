"""Shared fixtures for the core runtime tests.

``autojump_clock`` (``MockClock(autojump_threshold=0)``) comes from pytest-trio: request it in any
test where time matters.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from loguru import logger

import triactor
from triactor import open_actor_system


@pytest.fixture
async def system() -> AsyncIterator[triactor.ActorSystem]:
    """An actor system that proves every message used in a test survives a cattrs round trip."""
    async with open_actor_system(check_messages=True) as system:
        yield system


@pytest.fixture
def log_records() -> Iterator[list[dict[str, object]]]:
    """Every loguru record emitted during the test (the sink is removed afterwards)."""
    records: list[dict[str, object]] = []
    sink_id = logger.add(lambda message: records.append(message.record), level="DEBUG")
    try:
        yield records
    finally:
        logger.remove(sink_id)
