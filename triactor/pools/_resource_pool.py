"""ResourcePool: real objects (connections, clients) handed out under PriorityPool's rules."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Final, Generic, Self, TypeVar, final

import attrs
import trio

from .._logging import logger
from ._lease import Lease
from ._priority_pool import _DEFAULT_CLASSES, PriorityPool, _positive_number
from ._stats import PoolStatistics

__all__ = ["ResourcePool", "ResourcePoolStatistics"]

T = TypeVar("T")

_CLOSE_TIMEOUT: Final = 5.0


async def _default_close(obj: object) -> None:
    aclose = getattr(obj, "aclose", None)
    if aclose is not None:
        await aclose()
        return
    close = getattr(obj, "close", None)
    if close is not None:
        result = close()
        if inspect.isawaitable(result):
            await result


@final
@attrs.frozen
class ResourcePoolStatistics:
    """A snapshot of a :class:`~triactor.ResourcePool`, returned by its ``statistics()``."""

    size: int
    """Objects alive now (idle plus checked out)."""
    idle: int
    """Objects waiting in the pool for the next holder."""
    in_use: int
    """Objects checked out now."""
    created: int
    """Objects the factory made so far."""
    closed: int
    """Objects closed so far (broken, discarded, or at shutdown)."""
    broken: int
    """Objects that failed the health check or were discarded by their holder."""
    close_errors: int
    """Closes that raised or timed out (each is logged)."""
    pool: PoolStatistics
    """The statistics of the underlying :class:`~triactor.PriorityPool` (waits, shares...)."""


@final
class ResourcePool(Generic[T]):
    """A pool of real objects, handed out by priority like :class:`PriorityPool`'s slots.

    Connections to a database, clients of a rate-limited API, loaded models: each is costly to
    make and there may only be a few. ``ResourcePool`` makes them on demand with ``factory``,
    lends each to one holder at a time, and keeps them for the next holder. Who gets the next
    one follows the :class:`PriorityPool` rules (classes, minimum shares, round robin between
    actors, ``max_waiting``, the rate gate)::

        async with ResourcePool(connect, 4, classes={"high": 0.0, "low": 0.2}) as db:
            async with db.acquire(priority="high") as conn:
                await conn.execute("...")

    Before lending an idle object it runs ``check`` (if given); an object that fails the check,
    or that its holder marks with :meth:`discard`, is closed and replaced by a fresh one. At most
    ``capacity`` objects exist at once. Leaving the ``async with`` (or :meth:`aclose`) closes
    every idle object at once, and each object still lent out when its holder gives it back.

    A cancellation never leaks an object: one cancelled in the factory never existed; one
    cancelled during its health check is closed; one lent out comes back when the block exits.
    Closing is shielded from cancellation and bounded by ``close_timeout``.

    It is not a connection *manager*: it does not reconnect behind the holder's back or retry
    failed operations; an object is only replaced between holders.

    Args:
        factory: makes a new object (``async def``).
        capacity: the most objects at once (and the number of slots).
        classes, max_waiting, rate, burst, default_priority, stats_window: as for
            :class:`PriorityPool`.
        check: ``async def check(obj) -> bool``, run before each loan of an idle object; False
            or an exception means broken.
        close: ``async def close(obj)``; default ``await obj.aclose()``, else ``obj.close()``.
        close_timeout: seconds one close may take before it is abandoned (and logged).
        discard_on_error: close an object whose holder's block raised (including on
            cancellation), instead of keeping it.

    Raises:
        TypeError, ValueError: as :class:`PriorityPool` does, and for a ``factory``, ``check``
            or ``close`` that is not callable or a ``close_timeout`` not above 0.
    """

    __slots__ = (
        "_broken",
        "_check",
        "_close",
        "_close_errors",
        "_close_timeout",
        "_closed",
        "_closed_count",
        "_created",
        "_discard_on_error",
        "_doomed",
        "_factory",
        "_idle",
        "_out",
        "_pool",
    )

    def __init__(
        self,
        factory: Callable[[], Awaitable[T]],
        capacity: int,
        classes: Mapping[str, float] = _DEFAULT_CLASSES,
        *,
        check: Callable[[T], Awaitable[bool]] | None = None,
        close: Callable[[T], Awaitable[None]] | None = None,
        close_timeout: float = _CLOSE_TIMEOUT,
        discard_on_error: bool = False,
        max_waiting: int | Mapping[str, int] | None = None,
        rate: float | None = None,
        burst: float | None = None,
        default_priority: str | None = None,
        stats_window: int = 1024,
    ) -> None:
        for name, fn in (("factory", factory), ("check", check), ("close", close)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{name} must be an async function, got {fn!r}")
        self._pool = PriorityPool(
            capacity,
            classes,
            max_waiting=max_waiting,
            rate=rate,
            burst=burst,
            default_priority=default_priority,
            stats_window=stats_window,
        )
        self._factory = factory
        self._check = check
        self._close: Callable[[T], Awaitable[None]] = close or _default_close
        self._close_timeout = _positive_number("close_timeout", close_timeout)
        self._discard_on_error = discard_on_error
        self._idle: list[T] = []
        # Lent-out objects by id (objects need not be hashable), and those marked broken.
        self._out: dict[int, T] = {}
        self._doomed: set[int] = set()
        self._closed = False
        self._created = 0
        self._closed_count = 0
        self._broken = 0
        self._close_errors = 0

    @property
    def pool(self) -> PriorityPool:
        """The :class:`PriorityPool` that decides who gets the next object."""
        return self._pool

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` was called."""
        return self._closed

    def statistics(self) -> ResourcePoolStatistics:
        """Return a :class:`ResourcePoolStatistics` snapshot."""
        return ResourcePoolStatistics(
            size=len(self._idle) + len(self._out),
            idle=len(self._idle),
            in_use=len(self._out),
            created=self._created,
            closed=self._closed_count,
            broken=self._broken,
            close_errors=self._close_errors,
            pool=self._pool.statistics(),
        )

    def __repr__(self) -> str:
        state = ", closed" if self._closed else ""
        return (
            f"<ResourcePool {len(self._out)}/{self._pool.capacity} lent, {len(self._idle)} idle, "
            f"{self._pool.waiting} waiting{state}>"
        )

    def acquire(self, priority: str | None = None, *, owner: object = None) -> ResourceContext[T]:
        """Borrow an object; use as ``async with pool.acquire(priority=...) as obj:``.

        Arguments as for :meth:`PriorityPool.acquire` (one object, weight 1).

        Raises:
            ValueError, TypeError: at once, for an unknown class or wrong kinds.
            PoolOverloaded: on entering, if the class already has ``max_waiting`` waiters.
            trio.ClosedResourceError: on entering, if the pool is (or gets) closed.
            Exception: whatever ``factory`` raises when a new object is needed.
        """
        index = self._pool._resolve(priority)
        return ResourceContext(self, index, owner)

    def discard(self, obj: T) -> None:
        """Mark a lent-out object as broken: it is closed when given back, never lent again.

        Raises:
            ValueError: if ``obj`` is not lent out by this pool.
        """
        if id(obj) not in self._out:
            raise ValueError(f"{obj!r} is not lent out by this pool")
        self._doomed.add(id(obj))

    async def aclose(self) -> None:
        """Close every idle object now and every lent-out one when it comes back.

        New requests then raise :exc:`trio.ClosedResourceError`. Closing twice does nothing
        more. Closing is shielded from cancellation (each close bounded by ``close_timeout``).
        """
        self._closed = True
        while self._idle:
            await self._close_object(self._idle.pop())
        await trio.lowlevel.checkpoint()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- lending ------------------------------------------------------------------------------

    def _closed_error(self) -> trio.ClosedResourceError:
        return trio.ClosedResourceError(f"{self!r} is closed; it lends no more objects")

    async def _take(self) -> T:
        """Find a healthy idle object or make one. The caller holds a slot."""
        if self._closed:
            raise self._closed_error()
        while self._idle:
            obj = self._idle.pop()
            if self._check is None or await self._healthy(obj):
                self._out[id(obj)] = obj
                return obj
            self._broken += 1
            await self._close_object(obj)
        obj = await self._factory()
        self._created += 1
        self._out[id(obj)] = obj
        return obj

    async def _healthy(self, obj: T) -> bool:
        assert self._check is not None
        try:
            return bool(await self._check(obj))
        except Exception as exc:
            logger.opt(exception=exc).warning(
                "ResourcePool health check of {!r} raised; replacing it", obj
            )
            return False
        except BaseException:
            # Cancelled (or interrupted) mid-check: the object may be half-used; close it.
            await self._close_object(obj)
            raise

    async def _give_back(self, obj: T, failed: bool) -> None:
        del self._out[id(obj)]
        doomed = id(obj) in self._doomed
        if doomed:
            self._doomed.discard(id(obj))
            self._broken += 1
        if doomed or self._closed or (failed and self._discard_on_error):
            await self._close_object(obj)
        else:
            self._idle.append(obj)

    async def _close_object(self, obj: T) -> None:
        self._closed_count += 1
        deadline = trio.current_time() + self._close_timeout
        with trio.CancelScope(deadline=deadline, shield=True) as scope:
            try:
                await self._close(obj)
            except Exception as exc:
                self._close_errors += 1
                logger.opt(exception=exc).warning("ResourcePool could not close {!r}", obj)
        if scope.cancelled_caught:
            self._close_errors += 1
            logger.warning(
                "ResourcePool gave up closing {!r} after {}s (close_timeout)",
                obj,
                self._close_timeout,
            )


@final
class ResourceContext(Generic[T]):
    """What :meth:`ResourcePool.acquire` returns: ``async with`` it to borrow one object."""

    __slots__ = ("_held", "_index", "_owner", "_pool")

    def __init__(self, pool: ResourcePool[T], index: int, owner: object) -> None:
        self._pool = pool
        self._index = index
        self._owner = owner
        self._held: tuple[Lease, T] | None = None

    async def __aenter__(self) -> T:
        pool = self._pool
        if self._held is not None:
            raise RuntimeError("this pool.acquire(...) was already entered; call acquire again")
        if pool._closed:
            await trio.lowlevel.checkpoint()
            raise pool._closed_error()
        lease = await pool._pool._acquire(self._index, 1, self._owner, False)
        try:
            obj = await pool._take()
        except BaseException:
            lease.release()
            raise
        self._held = (lease, obj)
        return obj

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._held is not None
        lease, obj = self._held
        self._held = None
        try:
            await self._pool._give_back(obj, failed=exc_type is not None)
        finally:
            lease.release()
