"""A Redis connection for Trio: pipelined, reconnecting, and safe to cancel at any point.

One socket per :class:`RedisConnection`, shared by any number of tasks. Commands are encoded to
RESP with ``hiredis.pack_command``; a writer task sends everything queued since its last write
in one write (automatic pipelining) and a reader task parses replies with ``hiredis.Reader`` and
hands each to the command that waits for it, in order. On an idle connection ``execute`` writes
its command itself and, when no other task waits on the connection, picks up the reply if it is
already there (a local server often answers that fast), saving two task switches per round
trip. The socket is connected with Trio and then
driven as a plain non-blocking socket with ``wait_readable``/``wait_writable``, which is what
makes that write-and-peek possible. A dropped socket is reconnected with backoff and every
command that was sent but not answered is sent again. Knows nothing of actors.
"""

from __future__ import annotations

import random
import socket
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final, TypeAlias, final
from urllib.parse import quote, unquote, urlsplit

import attrs
import hiredis
import outcome
import trio
from trio.lowlevel import (
    Abort,
    RaiseCancelT,
    Task,
    current_task,
    enable_ki_protection,
    reschedule,
    wait_readable,
    wait_task_rescheduled,
    wait_writable,
)

from .._groups import unwrapped_group
from .._logging import logger

__all__ = [
    "RedisAddress",
    "RedisConnection",
    "RedisConnectionLost",
    "RedisConnectionStatistics",
    "RedisError",
    "open_connection",
]

Arg: TypeAlias = bytes | str | int | float
"""One argument of a command: bytes go as they are, str as UTF-8, numbers as their decimal text."""

_DEFAULT_PORT: Final = 6379
_READ_SIZE: Final = 65536
_MIN_BACKOFF: Final = 0.05
_MAX_BACKOFF: Final = 2.0
# One connection attempt (connect + handshake); a server that accepts and never answers is retried.
_ATTEMPT_TIMEOUT: Final = 5.0
# How long a cancelled execute_blocking may take to get its command's reply back.
_UNBLOCK_TIMEOUT: Final = 1.0
_UNBLOCK_RETRY: Final = 0.005
# How long leaving open_connection() waits for queued commands to be answered.
_FLUSH_TIMEOUT: Final = 5.0
_ACCEPTED_FORMS: Final = (
    "accepted forms: redis://[user:password@]host[:port][/db] and unix:///absolute/path.sock[?db=N]"
)


class RedisError(Exception):
    """An error reply from the server (``-ERR ...``, ``-NOGROUP ...``, ``-BUSYGROUP ...``).

    ``str(error)`` is the server's text, starting with the error code, for example
    ``"BUSYGROUP Consumer Group name already exists"``.
    """


class RedisConnectionLost(ConnectionError):
    """The socket dropped while a blocking command (:meth:`RedisConnection.execute_blocking`)
    waited on it. The command is not sent again: the caller decides (for a stream reader,
    re-read its pending entries)."""


@attrs.frozen
class RedisAddress:
    """Where a Redis server is and how to log in: a TCP host and port, or a unix socket path.

    Build one with :meth:`parse`; ``str(address)`` is its URL without the password (fit for
    logs), and the password is left out of ``repr`` too.
    """

    host: str | None = None
    """The TCP host name or IP address; None for a unix socket."""
    port: int = _DEFAULT_PORT
    """The TCP port (ignored for a unix socket)."""
    path: str | None = None
    """The unix socket's absolute path; None for TCP."""
    db: int = 0
    """The database number (``SELECT``)."""
    username: str | None = None
    """The ACL user for ``AUTH``; None for the default user."""
    password: str | None = attrs.field(default=None, repr=False)
    """The password for ``AUTH``; None for no authentication."""

    def __attrs_post_init__(self) -> None:
        if (self.host is None) == (self.path is None):
            raise ValueError("a RedisAddress has either a host or a unix socket path, not both")
        if self.db < 0:
            raise ValueError(f"the database number must be 0 or more, got {self.db}")
        if not 0 < self.port < 65536:
            raise ValueError(f"the port must be between 1 and 65535, got {self.port}")

    @classmethod
    def parse(cls, url: str) -> RedisAddress:
        """Parse ``redis://[user:password@]host[:port][/db]`` or ``unix:///path.sock[?db=N]``.

        User and password are percent-decoded; the port defaults to 6379 and the database to 0.

        Raises:
            TypeError: if ``url`` is not a str.
            ValueError: if it is not one of the accepted forms (the message names them; the
                password is never repeated in it).
        """
        if not isinstance(url, str):
            raise TypeError(f"a Redis URL is a str, got {type(url).__name__}")
        parts = urlsplit(url)

        def invalid(why: str) -> ValueError:
            shown = url
            if parts.password:
                shown = url.replace(f":{parts.password}@", ":***@", 1)
            return ValueError(f"cannot use Redis URL {shown!r}: {why}; {_ACCEPTED_FORMS}")

        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password is not None else None
        scheme = parts.scheme.lower()
        if parts.fragment:
            raise invalid("a URL fragment (#...) means nothing here")
        if scheme == "redis":
            if not parts.hostname:
                raise invalid("no host")
            try:
                port = parts.port
            except ValueError as exc:
                raise invalid(str(exc)) from None
            if parts.query:
                raise invalid("a redis:// URL takes no query; the database goes in the path")
            db_text = parts.path.strip("/")
            if not db_text:
                db = 0
            elif db_text.isdigit():
                db = int(db_text)
            else:
                raise invalid(f"the database must be a number, got {db_text!r}")
            return cls(
                host=parts.hostname,
                port=port if port is not None else _DEFAULT_PORT,
                db=db,
                username=username,
                password=password,
            )
        if scheme == "unix":
            if parts.hostname:
                raise invalid("a unix:// URL has no host: use three slashes, unix:///path")
            if not parts.path.startswith("/"):
                raise invalid("the socket path must be absolute")
            db = 0
            if parts.query:
                key, _, value = parts.query.partition("=")
                if key != "db" or not value.isdigit():
                    raise invalid(f"the only query a unix:// URL takes is ?db=N, got {key!r}")
                db = int(value)
            return cls(path=parts.path, db=db, username=username, password=password)
        if scheme == "rediss":
            raise invalid("TLS (rediss://) is not supported")
        raise invalid(f"unknown scheme {parts.scheme!r}")

    def __str__(self) -> str:
        user = f"{quote(self.username, safe='')}@" if self.username else ""
        if self.path is not None:
            return f"unix://{user}{self.path}" + (f"?db={self.db}" if self.db else "")
        assert self.host is not None
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"redis://{user}{host}:{self.port}/{self.db}"


@attrs.frozen
class RedisConnectionStatistics:
    """A snapshot of a :class:`RedisConnection`, from :meth:`RedisConnection.statistics`."""

    connected: bool
    """Whether a socket is up and logged in right now."""
    reconnects: int
    """How many times the connection was re-established after losing its socket."""
    commands_sent: int
    """Commands written to a socket so far, resent ones counted again."""
    in_flight: int
    """Commands not answered yet: queued, or sent and waiting for their reply."""
    outage_seconds: float
    """Total time spent unable to reach the server (connecting included), the current outage too."""


# A command on its way is not an object: this is the hot path. A fire-and-forget command (the
# bulk of the traffic: XADD, XACK, XDEL) is just its RESP bytes, which the garbage collector does
# not track (hundreds of thousands of tracked lists in flight made its collections cost 15-20%
# of the send path's CPU). Any other command is a two-item list, [payload, target]; the target
# says who gets the reply: a Task parked in execute(), a callable (send_nowait's on_reply,
# execute_many's batch, execute_blocking's slot), or _discard when its caller gave up (never
# written if not written yet; the reply is dropped).
_Waiting: TypeAlias = list[Any]
_Command: TypeAlias = bytes | _Waiting
_PAYLOAD: Final = 0
_TARGET: Final = 1


_NO_REPLY: Final = object()


def _discard(reply: Any) -> None:
    """The target of a command whose caller was cancelled: its reply is read and dropped."""


@final
class _Batch:
    """Collects the replies of one ``execute_many`` and wakes its caller after the last."""

    __slots__ = ("remaining", "replies", "task")

    def __init__(self, size: int, task: Task) -> None:
        self.replies: list[Any] = []
        self.remaining = size
        self.task: Task | None = task

    def add(self, reply: Any) -> None:
        self.replies.append(reply)
        self.remaining -= 1
        if self.remaining == 0 and self.task is not None:
            task, self.task = self.task, None
            reschedule(task, outcome.Value(self.replies))

    def fail(self, error: BaseException) -> None:
        if self.task is not None:
            task, self.task = self.task, None
            reschedule(task, outcome.Error(error))


@final
class _BlockingCall:
    """The reply slot of one ``execute_blocking``; it outlives a cancellation of its caller."""

    __slots__ = ("done", "event", "reply", "task")

    def __init__(self, task: Task) -> None:
        self.task: Task | None = task
        self.done = False
        self.reply: Any = None
        self.event: trio.Event | None = None

    def __call__(self, reply: Any) -> None:
        if self.done:
            return
        self.done = True
        self.reply = reply
        if self.task is not None:
            task, self.task = self.task, None
            if isinstance(reply, BaseException):
                reschedule(task, outcome.Error(reply))
            else:
                reschedule(task, outcome.Value(reply))
        elif self.event is not None:
            self.event.set()

    def fail(self, error: BaseException) -> None:
        self(error)


_Waiter: TypeAlias = _Batch | _BlockingCall
_RETRYABLE: Final = (OSError, trio.TooSlowError, hiredis.ProtocolError)


def _close_socket(sock: socket.socket) -> None:
    if sock.fileno() != -1:
        trio.lowlevel.notify_closing(sock)
        sock.close()


class _ServerLoading(ConnectionError):
    """The server answered ``-LOADING``: it is reading its data back; try again shortly."""


_pack_command: Callable[[tuple[Any, ...]], bytes] = hiredis.pack_command


def _pack(args: tuple[Any, ...]) -> bytes:
    if not args:
        raise _argument_error(args)
    try:
        return _pack_command(args)
    except TypeError:
        raise _argument_error(args) from None


def _argument_error(args: tuple[Any, ...]) -> Exception:
    if not args:
        return ValueError("a Redis command needs at least its name")
    bad = next(a for a in args if not isinstance(a, bytes | str | int | float | memoryview))
    return TypeError(
        f"a Redis command's arguments are bytes, str, int or float; {args[0]!r} got "
        f"{type(bad).__name__} {bad!r}"
    )


def _check_name(name: str) -> None:
    if not name or not all("!" <= ch <= "~" for ch in name):
        raise ValueError(
            f"the connection name {name!r} must be non-empty printable ASCII without spaces "
            "(it becomes the CLIENT SETNAME)"
        )


@final
class OutageLog:
    """Reports an outage of one server once for a group of connections (one process's).

    A process holds several connections to its server; when the server goes away they all
    lose it. With a shared ``OutageLog`` the outage is logged once, at a warning when the first
    connection loses the server and at info when the last one has it back, instead of once per
    connection.
    """

    __slots__ = ("_down", "_resent", "_since")

    def __init__(self) -> None:
        self._down: set[int] = set()
        self._since = 0.0
        self._resent = 0

    def lost(self, connection: object, address: object, error: BaseException | None) -> None:
        """``connection`` lost the server (first call of an outage logs it)."""
        if not self._down:
            self._since = trio.current_time()
            self._resent = 0
            logger.warning(
                "Redis at {} is unreachable ({}); reconnecting with backoff, and what is sent "
                "meanwhile waits",
                address,
                f"{type(error).__name__}: {error}" if error is not None else "connection lost",
            )
        self._down.add(id(connection))

    def restored(self, connection: object, address: object, resent: int) -> None:
        """``connection`` has the server back (the last one of an outage logs it)."""
        if id(connection) not in self._down:
            return
        self._down.discard(id(connection))
        self._resent += resent
        if not self._down:
            logger.info(
                "Redis at {} is reachable again after {:.2f} s; {} commands sent again",
                address,
                trio.current_time() - self._since,
                self._resent,
            )


@final
class RedisConnection:
    """One Redis connection shared by many tasks; comes from :func:`open_connection` (users
    never construct it).

    Any number of tasks may call :meth:`execute` at once: their commands are pipelined (written
    together) and each gets its own reply. Cancelling a caller at any point never desynchronises
    the connection: a reply still to come is read and discarded.

    When the socket drops (a server restart, ``CLIENT KILL``, a network cut) the connection
    reconnects by itself with exponential backoff and jitter (0.05 s up to 2 s), logs in again,
    awaits ``on_reconnect`` and then sends again every command that was sent but not answered,
    in order, before the ones queued meanwhile. Commands are therefore delivered at least once:
    use it for commands that tolerate a repeat (``XADD`` may duplicate an entry; ``XACK``,
    ``XDEL``, ``SET``, ``XCLAIM`` are idempotent). While disconnected, :meth:`execute` waits
    (bound it with a cancel scope) and :meth:`send_nowait` queues. An outage is logged once:
    a warning when it starts, an info when it ends.
    """

    address: RedisAddress
    """The server this connection talks to."""
    client_id: int
    """The server's ``CLIENT ID`` for the current socket (a new one after each reconnect)."""

    def __init__(
        self,
        address: RedisAddress,
        *,
        name: str,
        on_reconnect: Callable[[], Awaitable[None]] | None,
        outage_log: OutageLog | None = None,
    ) -> None:
        self.address = address
        self.client_id = 0
        self._name = name
        self._outage_log = outage_log
        self._on_reconnect = on_reconnect
        # Commands not yet written (in order), and written ones waiting for their reply.
        self._pending: deque[_Command] = deque()
        self._in_flight: deque[_Command] = deque()
        # While on_reconnect runs, its own commands go first, ahead of everything queued.
        self._urgent: list[_Command] = []
        self._held = False
        self._reconnect_task: Task | None = None
        self._writer_task: Task | None = None
        self._sock: socket.socket | None = None
        self._reader: hiredis.Reader | None = None
        # The tail of a partial write; the writer task sends it before anything else.
        self._unsent: memoryview | None = None
        self._parked: set[_Waiter] = set()
        # Tasks parked in execute(), and those given their reply but not yet resumed.
        self._callers = 0
        self._session_scope: trio.CancelScope | None = None
        self._session_error: BaseException | None = None
        self._abandoned_reply: Any = None
        self._connected = False
        self._closed = False
        self._reconnects = 0
        self._commands_sent = 0
        self._outage_total = 0.0
        self._outage_started: float | None = None
        self._outage_resent = 0

    def __repr__(self) -> str:
        state = "connected" if self._connected else "closed" if self._closed else "disconnected"
        return f"<RedisConnection {self.address} {state}, {self._unanswered()} in flight>"

    def _unanswered(self) -> int:
        return len(self._pending) + len(self._urgent) + len(self._in_flight)

    def statistics(self) -> RedisConnectionStatistics:
        """Return a snapshot: connected, reconnects, commands sent, in flight, outage time."""
        outage = self._outage_total
        if self._outage_started is not None:
            outage += trio.current_time() - self._outage_started
        return RedisConnectionStatistics(
            connected=self._connected,
            reconnects=self._reconnects,
            commands_sent=self._commands_sent,
            in_flight=self._unanswered(),
            outage_seconds=outage,
        )

    # -- queueing ------------------------------------------------------------------------------

    def _closed_error(self) -> trio.ClosedResourceError:
        return trio.ClosedResourceError(f"the Redis connection to {self.address} is closed")

    def _enqueue(self, command: _Command) -> None:
        if self._held and current_task() is self._reconnect_task:
            self._urgent.append(command)
        else:
            self._pending.append(command)
        writer = self._writer_task
        if writer is not None:
            self._writer_task = None
            reschedule(writer)

    @enable_ki_protection
    async def execute(self, *args: Arg) -> Any:
        """Send one command and return its reply (bytes, int, list, None, ...).

        Safe to call from many tasks at once; cancellation at any point leaves the connection
        in sync (the reply, when it comes, is discarded; a command cancelled before it was
        written is never sent). Waits while disconnected.

        Raises:
            RedisError: if the server answers with an error; the connection stays usable.
            TypeError: for an argument that is not bytes, str, int or float.
            ValueError: for an empty command.
            trio.ClosedResourceError: if the connection is closed.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._closed:
            raise self._closed_error()
        if not args:  # "*0" gets no reply at all: it would shift every reply after it
            raise _argument_error(args)
        try:
            payload = _pack_command(args)
        except TypeError:
            raise _argument_error(args) from None
        command = [payload, current_task()]
        if self._in_flight or self._pending or self._held or self._sock is None:
            # A busy connection batches: commands of tasks running at once share one write.
            self._enqueue(command)
        elif self._callers:
            # Idle, but other tasks wait in execute() and will likely send again as soon as
            # they resume: write this one now and let theirs queue behind it, to share a write.
            self._send((command,))
        else:
            # Idle, and this task alone uses it: write now rather than waking the writer task,
            # and look for the reply at once: on a local server it is often there already,
            # which saves the reader task's wake-up and a scheduler pass.
            reply = self._send_and_peek(command)
            if reply is not _NO_REPLY:
                await trio.lowlevel.cancel_shielded_checkpoint()
                if type(reply) is RedisError:
                    raise reply
                return reply

        def abort(_: RaiseCancelT) -> Abort:
            command[_TARGET] = _discard
            return Abort.SUCCEEDED

        self._callers += 1
        try:
            return await wait_task_rescheduled(abort)
        finally:
            self._callers -= 1

    @enable_ki_protection
    def send_nowait(self, *args: Arg, on_reply: Callable[[Any], None] | None = None) -> None:
        """Queue one command without waiting for it to be sent or answered.

        Order with the other commands of this connection is kept. ``on_reply`` is called from
        the connection's reader task with the reply, or with the :class:`RedisError` instance
        for an error reply; it must be quick and must not raise (an exception from it crashes
        the connection's ``async with`` block). An error reply to a command without ``on_reply``
        is logged as a warning. Never blocks and never checkpoints: the queue is unbounded, so
        the caller bounds how much it queues.

        Raises:
            TypeError: for an argument that is not bytes, str, int or float.
            ValueError: for an empty command.
            trio.ClosedResourceError: if the connection is closed.
        """
        if self._closed:
            raise self._closed_error()
        if not args:
            raise _argument_error(args)
        try:
            payload = _pack_command(args)
        except TypeError:
            raise _argument_error(args) from None
        self._enqueue(payload if on_reply is None else [payload, on_reply])

    @enable_ki_protection
    async def execute_many(self, commands: Sequence[Sequence[Arg]]) -> list[Any]:
        """Send several commands together (a pipeline) and return their replies in order.

        Error replies are returned in the list as :class:`RedisError` instances, not raised.
        Not a transaction: other tasks' commands may run in between on the server.

        Raises:
            TypeError: for an argument that is not bytes, str, int or float.
            ValueError: for an empty command.
            trio.ClosedResourceError: if the connection is closed.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._closed:
            raise self._closed_error()
        if not commands:
            return []
        payloads = [_pack(tuple(args)) for args in commands]
        batch = _Batch(len(payloads), current_task())
        add = batch.add
        queued = [[payload, add] for payload in payloads]
        if self._in_flight or self._pending or self._held or self._sock is None:
            for command in queued:
                self._enqueue(command)
        else:
            self._send(queued)  # an idle connection: write now (see execute)
        self._parked.add(batch)

        def abort(_: RaiseCancelT) -> Abort:
            batch.task = None
            for command in queued:
                command[_TARGET] = _discard
            return Abort.SUCCEEDED

        try:
            replies: list[Any] = await wait_task_rescheduled(abort)
        finally:
            self._parked.discard(batch)
        return replies

    @enable_ki_protection
    async def execute_blocking(self, *args: Arg, unblock_via: RedisConnection) -> Any:
        """Run a blocking read (``XREADGROUP``/``XREAD ... BLOCK ms``) and return its reply.

        For a connection dedicated to one reader. If the caller is cancelled while the command
        is on the server, this sends ``CLIENT UNBLOCK`` through ``unblock_via`` and reads the
        command's reply (shielded, 1 s at most) before raising ``Cancelled``: a reply carrying
        entries is kept for :meth:`take_abandoned_reply`, so entries the server delivered are
        never stranded. If the reply does not come back in time, this connection is dropped and
        reconnected, so that no read stays blocked on the server (what it delivered stays in
        the group's pending list). Not sent again after a reconnect.

        Raises:
            RedisConnectionLost: if the socket dropped while the command waited; re-read the
                pending entries.
            RedisError: if the server answers with an error.
            ValueError: if ``unblock_via`` is this connection, or for an empty command.
            trio.ClosedResourceError: if the connection is closed.
        """
        if unblock_via is self:
            raise ValueError("unblock_via must be another connection than the blocked one")
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._closed:
            raise self._closed_error()
        call = _BlockingCall(current_task())
        command = [_pack(args), call]
        self._enqueue(command)
        self._parked.add(call)

        def abort(_: RaiseCancelT) -> Abort:
            call.task = None
            queued = (*self._pending, *self._urgent)
            if any(other is command for other in queued):
                command[_TARGET] = _discard  # never written: nothing to rescue
            return Abort.SUCCEEDED

        try:
            return await wait_task_rescheduled(abort)
        except trio.Cancelled:
            if command[_TARGET] is call and not call.done:
                await self._rescue(call, command, unblock_via)
            if call.done and not isinstance(call.reply, BaseException):
                self._abandoned_reply = call.reply
            raise
        finally:
            self._parked.discard(call)

    async def _rescue(
        self, call: _BlockingCall, command: _Waiting, unblock_via: RedisConnection
    ) -> None:
        """Unblock a cancelled blocking command on the server and wait for its reply."""
        call.event = trio.Event()
        client_id = self.client_id
        with trio.CancelScope(shield=True) as scope:
            scope.deadline = trio.current_time() + _UNBLOCK_TIMEOUT
            while not call.done:
                try:
                    unblocked = await unblock_via.execute("CLIENT", "UNBLOCK", client_id)
                except (RedisError, trio.ClosedResourceError):
                    unblocked = 0
                # 0: the command has not reached the server yet (or just finished); ask again.
                with trio.move_on_after(_UNBLOCK_RETRY if unblocked != 1 else _UNBLOCK_TIMEOUT):
                    await call.event.wait()
        if not call.done:
            command[_TARGET] = _discard
            if client_id == self.client_id and self._session_scope is not None:
                self._lose(
                    TimeoutError(f"a blocking command was not unblocked in {_UNBLOCK_TIMEOUT} s")
                )

    def take_abandoned_reply(self) -> Any | None:
        """Return (and forget) the reply of the last ``execute_blocking`` cut short by a
        cancellation, or None if there is none."""
        reply, self._abandoned_reply = self._abandoned_reply, None
        return reply

    # -- the socket's tasks --------------------------------------------------------------------

    def _lose(self, error: BaseException) -> None:
        """The current socket is unusable: end its session (the run loop reconnects)."""
        if self._session_error is None:
            self._session_error = error
        if self._session_scope is not None:
            self._session_scope.cancel()

    @enable_ki_protection
    def _send(self, commands: Iterable[_Command]) -> None:
        """Write commands now, without waiting; the writer task finishes a partial write."""
        sock = self._sock
        assert sock is not None
        live = [c for c in commands if isinstance(c, bytes) or c[_TARGET] is not _discard]
        if not live:
            return
        self._in_flight.extend(live)
        self._commands_sent += len(live)
        data = b"".join([c if isinstance(c, bytes) else c[_PAYLOAD] for c in live])
        try:
            sent = sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self._lose(exc)
            return
        if sent < len(data):
            self._unsent = memoryview(data)[sent:]
            self._wake_writer()

    @enable_ki_protection
    def _send_and_peek(self, command: _Waiting) -> Any:
        """Write the only command in flight and read its reply if it has already come.

        Returns the reply, or _NO_REPLY (the reader task will deliver it). Only one command is
        in flight, so whatever arrives now is its reply: no other caller's reply or callback is
        handled in this task.
        """
        sock = self._sock
        reader = self._reader
        assert sock is not None and reader is not None
        self._in_flight.append(command)
        self._commands_sent += 1
        payload = command[_PAYLOAD]
        try:
            sent = sock.send(payload)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self._lose(exc)
            return _NO_REPLY
        if sent < len(payload):
            self._unsent = memoryview(payload)[sent:]
            self._wake_writer()
            return _NO_REPLY
        try:
            data = sock.recv(_READ_SIZE)
        except BlockingIOError:
            return _NO_REPLY
        except OSError as exc:
            self._lose(exc)
            return _NO_REPLY
        if not data:
            self._lose(ConnectionResetError("the server closed the connection"))
            return _NO_REPLY
        try:
            reader.feed(data)
            reply = reader.gets()
        except hiredis.ProtocolError as exc:
            self._lose(exc)
            return _NO_REPLY
        if reply is False:
            return _NO_REPLY  # a part of it: the reader task reads the rest
        self._in_flight.popleft()
        return reply

    def _wake_writer(self) -> None:
        writer = self._writer_task
        if writer is not None:
            self._writer_task = None
            reschedule(writer)

    @enable_ki_protection
    async def _write_loop(self, sock: socket.socket) -> None:
        """Send what was queued since the last send, in one write; finish partial writes."""

        def abort(_: RaiseCancelT) -> Abort:
            self._writer_task = None
            return Abort.SUCCEEDED

        try:
            while True:
                unsent = self._unsent
                if unsent is not None:
                    await wait_writable(sock)
                    try:
                        sent = sock.send(unsent)
                    except BlockingIOError:
                        continue
                    self._unsent = unsent[sent:] if sent < len(unsent) else None
                    continue
                if self._held:
                    queue: deque[_Command] | list[_Command] = self._urgent
                    if queue:
                        self._urgent = []
                else:
                    queue = self._pending
                    if queue:
                        self._pending = deque()
                if queue:
                    self._send(queue)
                else:
                    self._writer_task = current_task()
                    await wait_task_rescheduled(abort)
        except OSError as exc:
            self._lose(exc)

    @enable_ki_protection
    async def _read_loop(self, sock: socket.socket, reader: hiredis.Reader) -> None:
        """Read replies and hand each to the command that waits for it, in order."""
        in_flight = self._in_flight
        try:
            reads = 0
            while True:
                try:
                    data = sock.recv(_READ_SIZE)
                except BlockingIOError:
                    reads = 0
                    await wait_readable(sock)
                    continue
                if not data:
                    raise ConnectionResetError("the server closed the connection")
                reader.feed(data)
                reply = reader.gets()
                while reply is not False:
                    try:
                        command = in_flight.popleft()
                    except IndexError:
                        raise hiredis.ProtocolError(f"unexpected reply {reply!r}") from None
                    if type(command) is bytes:
                        if type(reply) is RedisError:
                            logger.warning(
                                "Redis at {} answered a fire-and-forget command with an error: {}",
                                self.address,
                                reply,
                            )
                        reply = reader.gets()
                        continue
                    target: Any = command[_TARGET]
                    if type(target) is Task:
                        if type(reply) is RedisError:
                            reschedule(target, outcome.Error(reply))
                        else:
                            reschedule(target, outcome.Value(reply))
                    else:
                        target(reply)
                    reply = reader.gets()
                # Replies keep coming without a wait: let other tasks run now and then.
                reads += 1
                if reads % 16 == 0:
                    await trio.lowlevel.cancel_shielded_checkpoint()
        except (OSError, hiredis.ProtocolError) as exc:
            self._lose(exc)

    async def _serve(self, sock: socket.socket, reader: hiredis.Reader, resume: bool) -> None:
        """Run one socket until it fails; after a reconnect, run ``on_reconnect`` first."""
        self._session_error = None
        self._connected = True
        try:
            async with trio.open_nursery() as nursery:
                self._session_scope = nursery.cancel_scope
                if resume:
                    self._held = True
                    self._reconnect_task = current_task()
                self._sock = sock
                self._reader = reader
                nursery.start_soon(self._write_loop, sock)
                nursery.start_soon(self._read_loop, sock, reader)
                if resume:
                    try:
                        if self._on_reconnect is not None:
                            await self._on_reconnect()
                    finally:
                        self._held = False
                        self._reconnect_task = None
                    self._outage_ends()
                    self._wake_writer()
        finally:
            self._sock = None
            self._reader = None
            self._unsent = None
            self._session_scope = None
            self._connected = False
            self._held = False
            self._reconnect_task = None

    def _requeue_after_loss(self) -> None:
        """Put the sent-but-unanswered commands back at the front of the queue, in order."""
        lost = RedisConnectionLost(
            f"the connection to Redis at {self.address} dropped while a blocking command waited"
        )
        resend: list[_Command] = []
        while self._in_flight:
            command = self._in_flight.popleft()
            if isinstance(command, bytes):
                resend.append(command)
                continue
            target = command[_TARGET]
            if target is _discard:
                continue
            if type(target) is _BlockingCall:
                target(lost)
            else:
                resend.append(command)
        # The socket died during on_reconnect: its commands not written yet still go first.
        unsent = [c for c in self._urgent if isinstance(c, bytes) or c[_TARGET] is not _discard]
        self._urgent = []
        self._pending.extendleft(reversed(resend + unsent))
        self._outage_resent += len(resend)

    async def _run(self, sock: socket.socket, reader: hiredis.Reader) -> None:
        """Serve the socket; whenever it fails, reconnect and serve the new one. Forever."""
        resume = False
        try:
            while True:
                await self._serve(sock, reader, resume)
                _close_socket(sock)
                self._outage_begins(self._session_error)
                self._requeue_after_loss()
                sock, reader = await self._connect_with_backoff()
                self._reconnects += 1
                resume = True
        finally:
            _close_socket(sock)

    # -- connecting ----------------------------------------------------------------------------

    def _outage_begins(self, error: BaseException | None) -> None:
        if self._outage_started is not None:
            return
        self._outage_started = trio.current_time()
        self._outage_resent = 0
        if self._outage_log is not None:
            self._outage_log.lost(self, self.address, error)
            return
        logger.warning(
            "Redis at {} is unreachable from connection {!r} ({}); retrying",
            self.address,
            self._name,
            f"{type(error).__name__}: {error}" if error is not None else "connection lost",
        )

    def _outage_ends(self) -> None:
        if self._outage_started is None:
            return
        duration = trio.current_time() - self._outage_started
        self._outage_total += duration
        self._outage_started = None
        if self._outage_log is not None:
            self._outage_log.restored(self, self.address, self._outage_resent)
            return
        logger.info(
            "Redis at {} is reachable again from connection {!r} after {:.2f} s; "
            "{} commands sent again",
            self.address,
            self._name,
            duration,
            self._outage_resent,
        )

    async def _connect_with_backoff(self) -> tuple[socket.socket, hiredis.Reader]:
        """Connect and log in, retrying with exponential backoff and jitter until it works.

        Raises:
            RedisError: if the server refuses the login (AUTH or SELECT): retrying cannot help.
        """
        delay = _MIN_BACKOFF
        while True:
            try:
                with trio.fail_after(_ATTEMPT_TIMEOUT):
                    return await self._connect_once()
            except _RETRYABLE as exc:
                self._outage_begins(exc)
            await trio.sleep(random.uniform(delay / 2, delay))
            delay = min(delay * 2, _MAX_BACKOFF)

    async def _connect_once(self) -> tuple[socket.socket, hiredis.Reader]:
        address = self.address
        if address.path is not None:
            stream = await trio.open_unix_socket(address.path)
        else:
            assert address.host is not None
            stream = await trio.open_tcp_stream(address.host, address.port)
            stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
        # From here on the plain socket, driven with wait_readable/wait_writable: it lets a
        # task write without a checkpoint (see execute), and saves a scheduler pass per read.
        trio_sock = stream.socket
        sock = socket.socket(trio_sock.family, trio_sock.type, trio_sock.proto, trio_sock.detach())
        try:
            sock.setblocking(False)
            reader = hiredis.Reader(replyError=RedisError)
            login: list[tuple[Arg, ...]] = []
            if address.password is not None:
                if address.username:
                    login.append(("AUTH", address.username, address.password))
                else:
                    login.append(("AUTH", address.password))
            if address.db:
                login.append(("SELECT", address.db))
            commands = [*login, ("CLIENT", "SETNAME", self._name), ("CLIENT", "ID"), ("PING",)]
            data = memoryview(b"".join(_pack(command) for command in commands))
            while data:
                await wait_writable(sock)
                data = data[sock.send(data) :]
            replies: list[Any] = []
            while len(replies) < len(commands):
                await wait_readable(sock)
                received = sock.recv(_READ_SIZE)
                if not received:
                    raise ConnectionResetError("the server closed the connection while logging in")
                reader.feed(received)
                reply = reader.gets()
                while reply is not False:
                    replies.append(reply)
                    reply = reader.gets()
            for command, reply in zip(commands, replies, strict=True):
                if isinstance(reply, RedisError):
                    if str(reply).startswith("LOADING"):
                        raise _ServerLoading(str(reply))
                    raise RedisError(
                        f"Redis at {address} refused {command[0]!r} while logging in: {reply}; "
                        "check the user, password and database in the URL"
                    )
            self.client_id = replies[-2]
            return sock, reader
        except BaseException:
            _close_socket(sock)
            raise

    # -- closing -------------------------------------------------------------------------------

    async def _flush(self) -> None:
        """Wait (bounded) until everything queued so far is answered."""
        if not self._unanswered():
            return
        with trio.move_on_after(_FLUSH_TIMEOUT):
            await self.execute("PING")

    @enable_ki_protection
    def _close(self) -> None:
        """Refuse new commands and wake every task still waiting for a reply."""
        self._closed = True
        if self._outage_log is not None:
            self._outage_log.restored(self, self.address, 0)  # no longer waits for the server
        closed = trio.ClosedResourceError(f"the Redis connection to {self.address} was closed")
        unanswered = 0
        for queue in (self._in_flight, self._pending, self._urgent):
            for command in queue:
                target = None if isinstance(command, bytes) else command[_TARGET]
                if target is _discard:
                    continue
                unanswered += 1
                if type(target) is Task:
                    reschedule(target, outcome.Error(closed))
        for waiter in list(self._parked):
            waiter.fail(closed)
        self._pending.clear()
        self._in_flight.clear()
        self._urgent.clear()
        if unanswered:
            logger.warning(
                "closed the connection to Redis at {} with {} commands unanswered "
                "(maybe not executed)",
                self.address,
                unanswered,
            )


async def unblock_until(
    done: trio.Event,
    blocked: Callable[[], RedisConnection | None],
    *,
    via: RedisConnection,
    every: float = 0.05,
) -> None:
    """Unblock a reader's blocking command (``CLIENT UNBLOCK`` through ``via``) until ``done``.

    For a reader that checks a stop flag between blocking reads: its read returns empty at
    once, it sees the flag and ends, and nothing it was delivered is lost. ``blocked()`` gives
    the reader's connection (None while it has none); the request is repeated every ``every``
    seconds, since it may reach the server before the read does.
    """
    while not done.is_set():
        connection = blocked()
        if connection is not None:
            via.send_nowait("CLIENT", "UNBLOCK", connection.client_id)
        with trio.move_on_after(every):
            await done.wait()


@asynccontextmanager
async def open_connection(
    address: RedisAddress | str,
    *,
    name: str = "triactor",
    on_reconnect: Callable[[], Awaitable[None]] | None = None,
    outage_log: OutageLog | None = None,
) -> AsyncIterator[RedisConnection]:
    """Connect to Redis for the duration of the ``async with`` block.

    Example::

        async with open_connection("redis://127.0.0.1:6379/0") as redis:
            await redis.execute("SET", "greeting", "hello")
            assert await redis.execute("GET", "greeting") == b"hello"

    Connecting retries with backoff until it succeeds (an unreachable server is logged once):
    bound it with a cancel scope. Each socket logs in with ``AUTH`` (if the URL has a password),
    ``SELECT`` (for a database other than 0) and ``CLIENT SETNAME name``. The connection's
    reader and writer tasks live in a nursery of this block. Leaving the block normally waits
    (5 s at most) for the commands already queued to be answered; then every task still waiting
    on the connection gets ``trio.ClosedResourceError``.

    Args:
        address: a :class:`RedisAddress` or a URL for :meth:`RedisAddress.parse`.
        name: the client name the server shows (``CLIENT LIST``); printable ASCII, no spaces.
        on_reconnect: awaited after each reconnection, before the commands interrupted by the
            outage are sent again; commands it runs itself on this connection go first.
        outage_log: shared by a process's connections, it logs an outage once for all of
            them (by default each connection logs its own).

    Raises:
        ValueError: for a bad URL or name.
        RedisError: if the server refuses the login (wrong password, no such database).
    """
    if isinstance(address, str):
        address = RedisAddress.parse(address)
    elif not isinstance(address, RedisAddress):
        raise TypeError(f"address is a RedisAddress or a URL str, got {type(address).__name__}")
    _check_name(name)
    connection = RedisConnection(
        address, name=name, on_reconnect=on_reconnect, outage_log=outage_log
    )
    sock, reader = await connection._connect_with_backoff()
    connection._outage_ends()
    with unwrapped_group():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(connection._run, sock, reader)
            try:
                yield connection
                await connection._flush()
            finally:
                connection._close()
                nursery.cancel_scope.cancel()
