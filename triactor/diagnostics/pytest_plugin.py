"""A pytest plugin that fails Trio tests in which a task blocks the loop.

Installed with triactor (an entry point), so it is there in every project that depends on it:

- ``pytest --triactor-blocking=0.2`` fails every async test in which a task runs longer than
  0.2 s without yielding, with the blocking line and the stack in the failure;
- the ``no_blocking_calls`` fixture (name it in a test's arguments) does the same for one
  test (threshold: the option, or 0.1 s);
- ``@pytest.mark.allow_blocking`` exempts a test from the option.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from ._blocking import BlockingDetector, detect_blocking

_OPTION = "--triactor-blocking"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register ``--triactor-blocking=SECONDS``."""
    parser.addoption(
        _OPTION,
        type=float,
        default=None,
        metavar="SECONDS",
        help="fail every async (Trio) test in which a task blocks the loop for SECONDS or more",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``allow_blocking`` marker."""
    config.addinivalue_line("markers", "allow_blocking: exempt this test from --triactor-blocking")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With the option on, run every async test inside a failing blocking detector."""
    threshold = config.getoption(_OPTION)
    if threshold is None:
        return
    for item in items:
        function = getattr(item, "obj", None)
        if (
            isinstance(item, pytest.Function)
            and inspect.iscoroutinefunction(function)
            and item.get_closest_marker("allow_blocking") is None
        ):
            item.obj = _guarded(function, threshold)


def _guarded(
    test: Callable[..., Awaitable[object]], threshold: float
) -> Callable[..., Awaitable[object]]:
    # Wrapping the test function itself (not adding a fixture) works with pytest-trio, which
    # runs only the async fixtures a test names in its signature.
    @functools.wraps(test)
    async def guarded(*args: Any, **kwargs: Any) -> object:
        async with detect_blocking(threshold, mode="fail"):
            return await test(*args, **kwargs)

    return guarded


@pytest.fixture
async def no_blocking_calls(request: pytest.FixtureRequest) -> AsyncIterator[BlockingDetector]:
    """Fail the test (at teardown) if any task blocked the Trio loop during it.

    Raises:
        BlockingCallDetected: with the report of each blocking stretch.
    """
    threshold = request.config.getoption(_OPTION) or 0.1
    async with detect_blocking(threshold, mode="fail") as detector:
        yield detector
