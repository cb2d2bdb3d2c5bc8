"""Helpers for tests that run against a real Redis/Valkey server (never a fake).

The session's server is ``$TRIACTOR_REDIS_URL`` if set, else a :class:`PrivateServer` of the
test run (see the ``redis_url`` fixture in conftest). Tests share it, so each works under its own
key prefix (the ``redis_prefix`` fixture) and nothing ever flushes it.
"""

from __future__ import annotations

import os
import re
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import trio

from triactor.remote._redis import RedisConnection
from triactor.remote._server import PrivateServer


@contextmanager
def session_server_url() -> Iterator[str]:
    """``$TRIACTOR_REDIS_URL``, or the URL of a private server running for the block.

    Fails the test run (never skips) with what to install when no server binary is found.
    """
    url = os.environ.get("TRIACTOR_REDIS_URL")
    if url:
        yield url
        return
    with private_server() as server:
        yield server.url


@contextmanager
def private_server(*, aof: bool = False, port: int = 0) -> Iterator[PrivateServer]:
    """A started :class:`PrivateServer`, stopped (and its directory removed) afterwards."""
    try:
        server = PrivateServer(aof=aof, port=port)
    except FileNotFoundError as exc:
        pytest.fail(f"the Redis tests need a server: {exc}", pytrace=False)
    with server:
        yield server


def unique_prefix(test_name: str) -> str:
    """A key prefix no other test uses: ``test:<name>:<random>:``."""
    name = re.sub(r"[^A-Za-z0-9_]+", "_", test_name)[:40]
    return f"test:{name}:{uuid.uuid4().hex[:8]}:"


def free_tcp_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def stream_values(connection: RedisConnection, key: str, field: bytes = b"i") -> list[bytes]:
    """Every value of ``field`` in the stream ``key``, in stream order."""
    entries: list[Any] = await connection.execute("XRANGE", key, "-", "+")
    values = []
    for _entry_id, fields in entries:
        pairs = dict(zip(fields[::2], fields[1::2], strict=True))
        values.append(pairs[field])
    return values


async def client_flags(connection: RedisConnection, client_id: int) -> str | None:
    """The ``flags`` of one client in ``CLIENT LIST`` (``b`` means blocked), None if gone."""
    listing: bytes = await connection.execute("CLIENT", "LIST", "ID", client_id)
    match = re.search(rb"flags=(\S*)", listing)
    return match.group(1).decode() if match else None


async def wait_blocked(connection: RedisConnection, client_id: int) -> None:
    """Wait until the server shows client ``client_id`` blocked in a command."""
    # The state is on the server: nothing local to wait on, so poll it.
    while "b" not in (await client_flags(connection, client_id) or ""):  # noqa: ASYNC110
        await trio.sleep(0.002)
