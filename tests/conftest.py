"""Shared fixtures for the core runtime tests.

``autojump_clock`` (``MockClock(autojump_threshold=0)``) comes from pytest-trio: request it in any
test where time matters.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest
from loguru import logger

import triactor
from triactor import _logging as triactor_logging
from triactor import open_actor_system

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
