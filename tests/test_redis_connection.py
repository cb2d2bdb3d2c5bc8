"""The Redis connection layer against a real server: pipelining, errors, cancellation, outages.

Real sockets and a real server, so these run on the wall clock: each test is bounded with
``trio.fail_after`` and waits for events (replies, server state), never for a fixed time.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from typing import Any
from urllib.parse import quote

import attrs
import pytest
import trio
import trio.lowlevel
import trio.testing
from hypothesis import given
from hypothesis import strategies as st
from redis_support import (
    client_flags,
    free_tcp_port,
    private_server,
    stream_values,
    wait_blocked,
)

from triactor.remote import _redis
from triactor.remote._redis import (
    RedisAddress,
    RedisConnection,
    RedisConnectionLost,
    RedisError,
    open_connection,
)
from triactor.remote._server import PrivateServer

redis = pytest.mark.redis


# -- addresses (no server needed) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://localhost", RedisAddress(host="localhost")),
        ("redis://127.0.0.1:6380/2", RedisAddress(host="127.0.0.1", port=6380, db=2)),
        ("redis://[::1]:7000/0", RedisAddress(host="::1", port=7000)),
        (
            "redis://bob:s%40cret@db.example:6379/1",
            RedisAddress(host="db.example", db=1, username="bob", password="s@cret"),
        ),
        ("redis://:pw@h/", RedisAddress(host="h", password="pw")),
        ("unix:///tmp/r.sock", RedisAddress(path="/tmp/r.sock")),
        ("unix:///tmp/r.sock?db=3", RedisAddress(path="/tmp/r.sock", db=3)),
        ("UNIX://:pw@/tmp/r.sock", RedisAddress(path="/tmp/r.sock", password="pw")),
    ],
)
def test_address_parses_the_accepted_forms(url: str, expected: RedisAddress) -> None:
    assert RedisAddress.parse(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost",
        "rediss://localhost",
        "redis://",
        "redis://localhost:99999",
        "redis://localhost/x",
        "redis://localhost?db=1",
        "unix://host/tmp/r.sock",
        "unix://relative.sock",
        "unix:///tmp/r.sock?timeout=3",
        "localhost:6379",
    ],
)
def test_address_rejects_other_forms_naming_the_accepted_ones(url: str) -> None:
    with pytest.raises(ValueError, match=r"accepted forms: redis://.*unix://"):
        RedisAddress.parse(url)


def test_address_never_shows_its_password() -> None:
    address = RedisAddress.parse("redis://bob:hunter2@h:1/4")
    assert str(address) == "redis://bob@h:1/4"
    assert "hunter2" not in repr(address)
    with pytest.raises(ValueError) as raised:
        RedisAddress.parse("redis://bob:hunter2@h/nope")
    assert "hunter2" not in str(raised.value)
    # str() is a URL that parses back to the same place.
    for url in ("redis://h:1/4", "redis://[::1]:7/0", "unix:///tmp/a.sock?db=2", "unix:///t.s"):
        assert RedisAddress.parse(str(RedisAddress.parse(url))) == RedisAddress.parse(url)


@given(
    host=st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z][a-z0-9-]{0,10}){0,2}", fullmatch=True),
    port=st.integers(1, 65535),
    db=st.integers(0, 99),
    username=st.none() | st.text(min_size=1, max_size=12),
    password=st.none() | st.text(max_size=12),
)
def test_address_urls_round_trip_any_user_and_password(
    host: str, port: int, db: int, username: str | None, password: str | None
) -> None:
    userinfo = ""
    if username is not None or password is not None:
        userinfo = quote(username or "", safe="")
        if password is not None:
            userinfo += ":" + quote(password, safe="")
        userinfo += "@"
    address = RedisAddress.parse(f"redis://{userinfo}{host}:{port}/{db}")
    assert address == RedisAddress(
        host=host, port=port, db=db, username=username, password=password
    )
    # Its str() leaves the password out and parses back to everything else.
    assert RedisAddress.parse(str(address)) == attrs.evolve(address, password=None)


def test_address_validation() -> None:
    with pytest.raises(ValueError, match="either a host or a unix socket path"):
        RedisAddress()
    with pytest.raises(ValueError, match="either a host or a unix socket path"):
        RedisAddress(host="h", path="/p")
    with pytest.raises(TypeError):
        RedisAddress.parse(b"redis://h")  # type: ignore[arg-type]


async def test_open_connection_validates_its_arguments() -> None:
    with pytest.raises(ValueError, match="CLIENT SETNAME"):
        async with open_connection("redis://localhost", name="two words"):
            pass  # pragma: no cover
    with pytest.raises(TypeError, match="RedisAddress or a URL"):
        async with open_connection(6379):  # type: ignore[arg-type]
            pass  # pragma: no cover


# -- commands ------------------------------------------------------------------------------------


@redis
async def test_execute_round_trips(redis_url: str, redis_prefix: str) -> None:
    key = redis_prefix + "k"
    with trio.fail_after(2):
        async with open_connection(redis_url, name="roundtrip") as conn:
            assert await conn.execute("PING") == b"PONG"
            assert await conn.execute("SET", key, "v1") == b"OK"
            assert await conn.execute(b"GET", key.encode()) == b"v1"
            assert await conn.execute("INCRBYFLOAT", key + "f", 1.5) == b"1.5"
            assert await conn.execute("INCRBY", key + "n", 7) == 7
            assert await conn.execute("GET", key + "missing") is None
            assert await conn.execute("MGET", key, key + "n") == [b"v1", b"7"]
            assert await conn.execute("CLIENT", "GETNAME") == b"roundtrip"
            assert await conn.execute("CLIENT", "ID") == conn.client_id
            with pytest.raises(TypeError, match="bytes, str, int or float"):
                await conn.execute("SET", key, None)  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="bytes, str, int or float"):
                conn.send_nowait("SET", key, [1])  # type: ignore[arg-type]
            # An empty command gets no reply from the server: refused, or replies would shift.
            with pytest.raises(ValueError, match="at least its name"):
                await conn.execute()
            with pytest.raises(ValueError, match="at least its name"):
                conn.send_nowait()
            with pytest.raises(ValueError, match="at least its name"):
                await conn.execute_many([("PING",), ()])
            assert await conn.execute("ECHO", "in sync") == b"in sync"
            stats = conn.statistics()
            assert stats.connected and stats.reconnects == 0 and stats.in_flight == 0
            assert stats.commands_sent >= 9
            assert "connected, 0 in flight" in repr(conn)
            await conn.execute("DEL", key, key + "f", key + "n")


@redis
async def test_execute_is_a_checkpoint_even_when_its_reply_is_already_there(
    redis_url: str,
) -> None:
    with trio.fail_after(2):
        async with open_connection(redis_url) as conn:
            progress = 0

            async def other_task() -> None:
                nonlocal progress
                while True:
                    progress += 1
                    await trio.lowlevel.checkpoint()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(other_task)
                for _ in range(200):
                    with trio.testing.assert_checkpoints():
                        assert await conn.execute("PING") == b"PONG"
                nursery.cancel_scope.cancel()
            # A loop of execute() calls lets other tasks run.
            assert progress >= 100


@redis
async def test_tcp_connection_with_password_and_database() -> None:
    with trio.fail_after(5), private_server(port=free_tcp_port()) as server:
        assert server.tcp_url is not None
        async with open_connection(server.tcp_url) as admin:
            assert await admin.execute("CONFIG", "SET", "requirepass", "s3cret") == b"OK"
        wrong = server.tcp_url.replace("redis://", "redis://:nope@").replace("/0", "/3")
        with pytest.raises(RedisError, match=r"refused 'AUTH'.*password"):
            async with open_connection(wrong):
                pass  # pragma: no cover
        right = wrong.replace(":nope@", ":s3cret@")
        async with open_connection(right) as conn:
            await conn.execute("SET", "where", "db3")
            assert await conn.execute("CLIENT", "INFO") is not None
            assert b"db=3" in await conn.execute("CLIENT", "INFO")
            assert await conn.execute("GET", "where") == b"db3"


@redis
async def test_concurrent_tasks_each_get_their_own_replies_in_order(
    redis_url: str, redis_prefix: str
) -> None:
    rounds = 200

    async def worker(conn: RedisConnection, name: str) -> None:
        key = f"{redis_prefix}{name}"
        for i in range(rounds):
            assert await conn.execute("RPUSH", key, i) == i + 1
            assert await conn.execute("ECHO", f"{name}:{i}") == f"{name}:{i}".encode()

    with trio.fail_after(2):
        async with open_connection(redis_url) as conn:
            async with trio.open_nursery() as nursery:
                for name in ("a", "b", "c"):
                    nursery.start_soon(worker, conn, name)
            for name in ("a", "b", "c"):
                key = f"{redis_prefix}{name}"
                assert await conn.execute("LRANGE", key, 0, -1) == [
                    str(i).encode() for i in range(rounds)
                ]
                await conn.execute("DEL", key)
            # Every command sent exactly once.
            assert conn.statistics().commands_sent == 3 * 2 * rounds + 3 * 2


@redis
async def test_error_replies_raise_and_leave_the_connection_usable(
    redis_url: str, redis_prefix: str
) -> None:
    key = redis_prefix + "text"
    with trio.fail_after(2):
        async with open_connection(redis_url) as conn:
            await conn.execute("SET", key, "not a number")
            with pytest.raises(RedisError, match=r"^ERR value is not an integer"):
                await conn.execute("INCR", key)
            with pytest.raises(RedisError, match=r"^NOGROUP"):
                await conn.execute(
                    "XREADGROUP", "GROUP", "nope", "c", "STREAMS", redis_prefix + "s", ">"
                )
            await conn.execute("XGROUP", "CREATE", redis_prefix + "s", "g", "$", "MKSTREAM")
            with pytest.raises(RedisError, match=r"^BUSYGROUP"):
                await conn.execute("XGROUP", "CREATE", redis_prefix + "s", "g", "$", "MKSTREAM")
            assert await conn.execute("GET", key) == b"not a number"
            await conn.execute("DEL", key, redis_prefix + "s")


@redis
async def test_execute_many_returns_replies_and_errors_in_order(
    redis_url: str, redis_prefix: str
) -> None:
    key = redis_prefix + "k"
    with trio.fail_after(2):
        async with open_connection(redis_url) as conn:
            assert await conn.execute_many([]) == []
            replies = await conn.execute_many(
                [("SET", key, "1"), ("INCR", key), ("HGET", key, "f"), ["GET", key], ("DEL", key)]
            )
            assert replies[:2] == [b"OK", 2]
            assert isinstance(replies[2], RedisError)
            assert str(replies[2]).startswith("WRONGTYPE")
            assert replies[3:] == [b"2", 1]


@redis
async def test_send_nowait_calls_back_in_order_and_keeps_order_with_execute(
    redis_url: str, redis_prefix: str, log_records: list[dict[str, Any]]
) -> None:
    key = redis_prefix + "list"
    replies: list[Any] = []
    with trio.fail_after(2):
        async with open_connection(redis_url) as conn:
            for i in range(100):
                conn.send_nowait("RPUSH", key, i, on_reply=replies.append)
            conn.send_nowait("HGET", key, "f", on_reply=replies.append)
            conn.send_nowait("SET", redis_prefix + "plain", "x")  # no callback
            conn.send_nowait("INCR", key)  # an error nobody waits for: logged
            # Queued before it, so answered before it: no wait needed.
            assert await conn.execute("LLEN", key) == 100
            assert replies[:100] == list(range(1, 101))
            assert isinstance(replies[100], RedisError)
            assert await conn.execute("GET", redis_prefix + "plain") == b"x"
            await conn.execute("DEL", key, redis_prefix + "plain")
    warnings = [r for r in log_records if r["level"].name == "WARNING"]
    assert len(warnings) == 1
    assert "fire-and-forget" in warnings[0]["message"]
    assert "WRONGTYPE" in warnings[0]["message"]


@redis
async def test_leaving_the_block_flushes_queued_commands_then_refuses_new_ones(
    redis_url: str, redis_prefix: str
) -> None:
    key = redis_prefix + "flushed"
    with trio.fail_after(2):
        async with open_connection(redis_url) as conn:
            for i in range(1000):
                conn.send_nowait("RPUSH", key, i)
        with pytest.raises(trio.ClosedResourceError):
            await conn.execute("PING")
        with pytest.raises(trio.ClosedResourceError):
            conn.send_nowait("PING")
        assert "closed" in repr(conn)
        async with open_connection(redis_url) as check:
            assert await check.execute("LLEN", key) == 1000
            await check.execute("DEL", key)


@redis
async def test_an_on_reply_callback_that_raises_ends_the_block_with_its_error(
    redis_url: str,
) -> None:
    def broken(reply: object) -> None:
        raise LookupError(f"callback bug on {reply!r}")

    with trio.fail_after(2), pytest.raises(LookupError, match="callback bug on b'PONG'"):
        async with open_connection(redis_url) as conn:
            conn.send_nowait("PING", on_reply=broken)
            await trio.sleep_forever()


@redis
async def test_closing_wakes_waiting_tasks_and_reports_what_was_unanswered(
    private_redis: PrivateServer,
    log_records: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_redis, "_FLUSH_TIMEOUT", 0.1)
    errors: list[BaseException] = []

    async def waiter(conn: RedisConnection) -> None:
        try:
            await conn.execute("GET", "k")
        except trio.ClosedResourceError as exc:
            errors.append(exc)

    with trio.fail_after(5):
        async with trio.open_nursery() as outer, open_connection(private_redis.url) as conn:
            await trio.to_thread.run_sync(private_redis.kill)
            outer.start_soon(waiter, conn)
            conn.send_nowait("SET", "k", "v")
            await trio.testing.wait_all_tasks_blocked()
            # The server is down: leaving waits 0.1 s for the flush, then gives up.
    assert len(errors) == 1 and "closed" in str(errors[0])
    closing = [r["message"] for r in log_records if r["message"].startswith("closed the")]
    assert len(closing) == 1
    assert "2 commands unanswered" in closing[0]  # GET and SET


# -- cancellation --------------------------------------------------------------------------------


@redis
async def test_cancelled_before_sending_sends_nothing(redis_url: str, redis_prefix: str) -> None:
    key = redis_prefix + "never"
    with trio.fail_after(2):
        async with open_connection(redis_url) as conn:
            with trio.CancelScope() as scope:
                scope.cancel()
                await conn.execute("SET", key, "x")
            assert scope.cancelled_caught
            assert await conn.execute("EXISTS", key) == 0


@redis
async def test_cancelling_an_in_flight_execute_does_not_desync(
    redis_url: str, redis_prefix: str
) -> None:
    key = redis_prefix + "k"
    with trio.fail_after(2):
        async with open_connection(redis_url) as conn:
            await conn.execute("SET", key, "right")
            # BLPOP holds the reply back for 0.2 s: cancel it while it is on the server.
            with trio.move_on_after(0.02) as scope:
                await conn.execute("BLPOP", redis_prefix + "empty", 0.2)
            assert scope.cancelled_caught
            # The next reply is GET's, not BLPOP's late nil.
            assert await conn.execute("GET", key) == b"right"
            assert await conn.execute("ECHO", "after") == b"after"
            await conn.execute("DEL", key)


@redis
async def test_cancelling_execute_many_does_not_desync(redis_url: str, redis_prefix: str) -> None:
    with trio.fail_after(2):
        async with open_connection(redis_url) as conn:
            with trio.move_on_after(0.02) as scope:
                await conn.execute_many(
                    [("ECHO", "a"), ("BLPOP", redis_prefix + "empty", 0.2), ("ECHO", "b")]
                )
            assert scope.cancelled_caught
            assert await conn.execute_many([("ECHO", "c"), ("ECHO", "d")]) == [b"c", b"d"]


@redis
async def test_random_cancellations_never_mix_up_replies(redis_url: str) -> None:
    rng = random.Random(9)
    answered = 0

    async def echo(conn: RedisConnection, i: int, patience: float) -> None:
        nonlocal answered
        with trio.move_on_after(patience):
            assert await conn.execute("ECHO", f"n{i}") == f"n{i}".encode()
            answered += 1

    with trio.fail_after(2):
        async with open_connection(redis_url) as conn:
            async with trio.open_nursery() as nursery:
                for i in range(400):
                    nursery.start_soon(echo, conn, i, rng.choice([0, 0.0001, 0.0005, 0.002, 1]))
                    if i % 20 == 0:
                        await trio.lowlevel.checkpoint()
            assert await conn.execute("ECHO", "last") == b"last"
            assert conn.statistics().in_flight == 0
    assert 0 < answered < 400


@redis
async def test_execute_blocking_returns_entries(redis_url: str, redis_prefix: str) -> None:
    stream = redis_prefix + "s"
    with trio.fail_after(2):
        async with open_connection(redis_url) as reader, open_connection(redis_url) as control:
            await control.execute("XGROUP", "CREATE", stream, "g", "$", "MKSTREAM")
            async with trio.open_nursery() as nursery:
                nursery.start_soon(wait_then_add, control, reader.client_id, stream)
                reply = await reader.execute_blocking(
                    *xreadgroup(stream, block_ms=1000), unblock_via=control
                )
            assert reply[0][0] == stream.encode()
            assert [fields for _id, fields in reply[0][1]] == [[b"n", b"1"]]
            with pytest.raises(ValueError, match="another connection"):
                await reader.execute_blocking("PING", unblock_via=reader)
            await control.execute("DEL", stream)


async def wait_then_add(control: RedisConnection, reader_id: int, stream: str) -> None:
    await wait_blocked(control, reader_id)
    await control.execute("XADD", stream, "*", "n", 1)


def xreadgroup(stream: str, *, block_ms: int) -> tuple[str | int, ...]:
    return ("XREADGROUP", "GROUP", "g", "c", "COUNT", 10, "BLOCK", block_ms, "STREAMS", stream, ">")


async def pending_ids(control: RedisConnection, stream: str) -> list[bytes]:
    """Entries delivered to group ``g`` and not acknowledged."""
    return [row[0] for row in await control.execute("XPENDING", stream, "g", "-", "+", 100)]


@redis
async def test_cancelled_blocking_read_strands_no_entry(redis_url: str, redis_prefix: str) -> None:
    stream = redis_prefix + "s"
    with trio.fail_after(2):
        async with open_connection(redis_url) as reader, open_connection(redis_url) as control:
            await control.execute("XGROUP", "CREATE", stream, "g", "$", "MKSTREAM")
            got: list[Any] = []

            async def read(task_status: trio.TaskStatus[trio.CancelScope]) -> None:
                with trio.CancelScope() as scope:
                    task_status.started(scope)
                    got.append(
                        await reader.execute_blocking(
                            *xreadgroup(stream, block_ms=5000), unblock_via=control
                        )
                    )

            async with trio.open_nursery() as nursery:
                scope = await nursery.start(read)
                await wait_blocked(control, reader.client_id)
                # XADD is queued on `control` ahead of the CLIENT UNBLOCK the cancellation
                # sends: the server hands the entry to the blocked read, then the read is
                # cancelled with that reply on its way.
                control.send_nowait("XADD", stream, "*", "n", 1)
                scope.cancel()
            assert got == []
            abandoned = reader.take_abandoned_reply()
            assert abandoned is not None
            ids = [entry_id for entry_id, _fields in abandoned[0][1]]
            assert len(ids) == 1
            # Delivered exactly what the caller now holds: nothing stranded.
            assert await pending_ids(control, stream) == ids
            assert reader.take_abandoned_reply() is None
            # The reader is no longer blocked on the server and its connection works.
            assert "b" not in (await client_flags(control, reader.client_id) or "")
            assert await reader.execute("PING") == b"PONG"
            await control.execute("DEL", stream)


@redis
async def test_cancelled_blocking_read_unblocks_the_server_promptly(
    redis_url: str, redis_prefix: str
) -> None:
    stream = redis_prefix + "s"
    with trio.fail_after(2):
        async with open_connection(redis_url) as reader, open_connection(redis_url) as control:
            await control.execute("XGROUP", "CREATE", stream, "g", "$", "MKSTREAM")
            for _ in range(3):
                with trio.move_on_after(0.05) as scope:
                    await reader.execute_blocking(
                        *xreadgroup(stream, block_ms=10_000), unblock_via=control
                    )
                assert scope.cancelled_caught
                # CLIENT UNBLOCK ends the read as a timeout: no reply to keep, none pending.
                assert reader.take_abandoned_reply() is None
                assert await pending_ids(control, stream) == []
                assert await reader.execute("ECHO", "free") == b"free"
            # Entries added afterwards go to the next read, not to a stale one.
            await control.execute("XADD", stream, "*", "n", 2)
            reply = await reader.execute_blocking(
                *xreadgroup(stream, block_ms=1000), unblock_via=control
            )
            assert [fields for _id, fields in reply[0][1]] == [[b"n", b"2"]]
            assert reader.statistics().reconnects == 0
            await control.execute("DEL", stream)


@redis
async def test_cancelled_blocking_read_not_yet_on_the_server_is_unblocked_too(
    redis_url: str, redis_prefix: str
) -> None:
    stream = redis_prefix + "s"
    with trio.fail_after(2):
        async with open_connection(redis_url) as reader, open_connection(redis_url) as control:
            await control.execute("XGROUP", "CREATE", stream, "g", "$", "MKSTREAM")
            # The server holds XREADGROUP back for 100 ms (it writes to the group), so the
            # first CLIENT UNBLOCKs find nothing to unblock: they must be retried.
            await control.execute("CLIENT", "PAUSE", 100, "WRITE")
            with trio.move_on_after(0.02) as scope:
                await reader.execute_blocking(
                    *xreadgroup(stream, block_ms=10_000), unblock_via=control
                )
            assert scope.cancelled_caught
            assert reader.take_abandoned_reply() is None
            # Unblocked rather than given up on (which would have dropped the connection).
            assert reader.statistics().reconnects == 0
            assert "b" not in (await client_flags(control, reader.client_id) or "")
            assert await reader.execute("PING") == b"PONG"
            await control.execute("DEL", stream)


@redis
async def test_blocking_read_raises_connection_lost_and_is_not_resent(
    redis_url: str, redis_prefix: str
) -> None:
    stream = redis_prefix + "s"
    with trio.fail_after(2):
        async with open_connection(redis_url) as reader, open_connection(redis_url) as control:
            await control.execute("XGROUP", "CREATE", stream, "g", "$", "MKSTREAM")
            first_id = reader.client_id

            async def kill_reader() -> None:
                await wait_blocked(control, first_id)
                await control.execute("CLIENT", "KILL", "ID", first_id)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(kill_reader)
                with pytest.raises(RedisConnectionLost):
                    await reader.execute_blocking(
                        *xreadgroup(stream, block_ms=5000), unblock_via=control
                    )
            assert await reader.execute("PING") == b"PONG"
            assert reader.client_id != first_id
            assert reader.statistics().reconnects == 1
            # Not resent: nothing is blocked on the server for this reader.
            assert "b" not in (await client_flags(control, reader.client_id) or "")
            await control.execute("DEL", stream)


# -- outages -------------------------------------------------------------------------------------


async def _xadd_through_outage(
    conn: RedisConnection,
    admin: RedisConnection,
    stream: str,
    count: int,
    outage: Any,
    *,
    callbacks: bool = True,
) -> Counter[int]:
    """XADD ``count`` entries with send_nowait, with ``outage`` halfway; return reply counts.

    The server holds back the writes of the last 250 entries before the outage (``CLIENT
    PAUSE WRITE``), so the outage always finds commands sent and not answered. Without
    ``callbacks`` the commands are fire and forget (nothing counted).
    """
    answered: Counter[int] = Counter()

    def on_reply(reply: object) -> None:
        answered.update([1])

    half = count // 2
    for i in range(count):
        conn.send_nowait("XADD", stream, "*", "i", i, on_reply=on_reply if callbacks else None)
        if i % 250 == 249:
            await trio.lowlevel.checkpoint()
        if i == half - 250:
            await admin.execute("CLIENT", "PAUSE", 5000, "WRITE")
        if i == half:
            await trio.lowlevel.checkpoint()
            await wait_blocked(admin, conn.client_id)
            assert conn.statistics().in_flight > 0
            await outage()
            await admin.execute("CLIENT", "UNPAUSE")
    await conn.execute("PING")  # everything queued before it is answered
    return answered


def _assert_every_payload_once_or_more(values: list[bytes], count: int) -> int:
    counts = Counter(int(value) for value in values)
    assert set(counts) == set(range(count))
    return sum(counts.values()) - count


@redis
async def test_killed_connection_reconnects_and_resends(
    private_redis: PrivateServer, log_records: list[dict[str, Any]]
) -> None:
    count = 5000
    reconnected = 0

    async def on_reconnect() -> None:
        nonlocal reconnected
        reconnected += 1
        # Runs ahead of the commands waiting for the reconnection, on the same connection.
        assert await conn.execute("SET", "reconnected", reconnected) == b"OK"

    with trio.fail_after(3):
        async with (
            open_connection(private_redis.url, on_reconnect=on_reconnect) as conn,
            open_connection(private_redis.url, name="killer") as killer,
        ):
            first_id = conn.client_id

            async def kill() -> None:
                # SKIPME yes (the default): every client but the killer.
                assert await killer.execute("CLIENT", "KILL", "TYPE", "normal") >= 1

            answered = await _xadd_through_outage(conn, killer, "s", count, kill)
            assert sum(answered.values()) == count
            values = await stream_values(conn, "s")
            duplicates = _assert_every_payload_once_or_more(values, count)
            assert len(values) == count + duplicates
            assert reconnected == 1
            assert await conn.execute("GET", "reconnected") == b"1"
            stats = conn.statistics()
            assert stats.reconnects == 1 and stats.connected and stats.in_flight == 0
            assert stats.outage_seconds > 0
            assert conn.client_id != first_id
    _assert_outage_logged_once(log_records)


@redis
async def test_server_restart_with_aof_loses_nothing(
    private_redis: PrivateServer, log_records: list[dict[str, Any]]
) -> None:
    count = 5000
    with trio.fail_after(5):
        async with (
            open_connection(private_redis.url) as conn,
            open_connection(private_redis.url, name="admin") as admin,
        ):

            async def restart() -> None:
                await trio.to_thread.run_sync(private_redis.restart)

            await _xadd_through_outage(conn, admin, "s", count, restart, callbacks=False)
            values = await stream_values(conn, "s")
            _assert_every_payload_once_or_more(values, count)
            assert conn.statistics().reconnects == 1
    _assert_outage_logged_once(log_records)


def _assert_outage_logged_once(log_records: list[dict[str, Any]]) -> None:
    """The main connection ('triactor') logged its outage once: a warning, then an info."""
    ours = [r for r in log_records if "from connection 'triactor'" in r["message"]]
    warnings = [r["message"] for r in ours if r["level"].name == "WARNING"]
    infos = [r["message"] for r in ours if r["level"].name == "INFO"]
    assert len(warnings) == 1, warnings
    assert "unreachable" in warnings[0] and "redis.sock" in warnings[0]
    assert len(infos) == 1, infos
    assert re.search(r"reachable again .* after [\d.]+ s; [1-9]\d* commands sent again", infos[0])


@redis
async def test_execute_waits_through_an_outage(private_redis: PrivateServer) -> None:
    with trio.fail_after(5):
        async with open_connection(private_redis.url) as conn:
            await conn.execute("SET", "k", "kept")
            await trio.to_thread.run_sync(private_redis.kill)
            async with trio.open_nursery() as nursery:
                # Started while the server is down; answered once it is back.
                nursery.start_soon(trio.to_thread.run_sync, private_redis.start)
                assert await conn.execute("GET", "k") == b"kept"
            assert not conn.statistics().in_flight


@redis
async def test_a_command_cancelled_while_disconnected_is_never_sent(
    private_redis: PrivateServer,
) -> None:
    with trio.fail_after(5):
        async with open_connection(private_redis.url) as conn:
            await trio.to_thread.run_sync(private_redis.kill)
            with trio.move_on_after(0.05) as scope:
                await conn.execute("SET", "cancelled", "x")
            assert scope.cancelled_caught
            await trio.to_thread.run_sync(private_redis.start)
            assert await conn.execute("EXISTS", "cancelled") == 0


@redis
async def test_connecting_retries_until_the_server_is_up(
    log_records: list[dict[str, Any]],
) -> None:
    with trio.fail_after(5), private_server() as server:
        await trio.to_thread.run_sync(server.stop)
        # Not up: connecting keeps trying, and the caller's scope bounds it.
        with trio.move_on_after(0.2) as scope:
            async with open_connection(server.url):
                pass  # pragma: no cover
        assert scope.cancelled_caught
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.to_thread.run_sync, server.start)
            async with open_connection(server.url) as conn:
                assert await conn.execute("PING") == b"PONG"
        await trio.to_thread.run_sync(server.stop)
    warnings = [r for r in log_records if r["level"].name == "WARNING"]
    assert len(warnings) == 2  # one per attempt to connect, not one per retry
    assert all("unreachable" in r["message"] for r in warnings)
