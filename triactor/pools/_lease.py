"""What a pool hands out: a record of slots held, which gives them back exactly once."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import final

from trio import CancelScope
from trio.lowlevel import enable_ki_protection

__all__ = ["Lease"]


@final
class Lease:
    """Slots of a :class:`~triactor.PriorityPool` held by one request.

    Users never construct a lease: ``async with pool.acquire(...) as lease`` yields one and
    gives it back when the block exits, and :meth:`PriorityPool.acquire_nowait` returns one that
    the caller gives back with :meth:`release` or a ``with lease:`` block.

    A preemptible lease (``acquire(..., preemptible=True)``) carries a :attr:`cancel_scope`
    around the holder's block. The pool cancels it when a request of a higher class has waited
    longer than the pool's ``preempt_after``; the block then ends quietly, the slots go back, and
    :attr:`preempted` is True so the holder can queue its work again::

        while True:
            async with pool.acquire(priority="low", preemptible=True) as lease:
                await crunch(batch)
            if not lease.preempted:
                break
    """

    __slots__ = (
        "_entered",
        "_preempted",
        "_release_fn",
        "_released",
        "cancel_scope",
        "granted_at",
        "index",
        "owner",
        "priority",
        "seq",
        "waited",
        "weight",
    )

    def __init__(
        self,
        release_fn: Callable[[Lease], None],
        *,
        priority: str,
        index: int,
        weight: int,
        owner: object,
        granted_at: float,
        waited: float,
        seq: int,
        preemptible: bool,
    ) -> None:
        self._release_fn = release_fn
        self.priority = priority
        """The name of the priority class the slots were granted to."""
        self.index = index
        """The class's position in priority order (0 is the highest)."""
        self.weight = weight
        """How many slots the lease holds."""
        self.owner = owner
        """The round-robin key the request was queued under."""
        self.granted_at = granted_at
        """``trio.current_time()`` when the slots were granted."""
        self.waited = waited
        """Seconds the request waited before the grant."""
        self.seq = seq
        """Grant order within the pool."""
        self.cancel_scope: CancelScope | None = CancelScope() if preemptible else None
        """The scope the pool cancels to preempt this lease; None if not preemptible."""
        self._preempted = False
        self._released = False
        self._entered = False

    @property
    def preemptible(self) -> bool:
        """Whether the pool may preempt this lease."""
        return self.cancel_scope is not None

    @property
    def preempted(self) -> bool:
        """True once the pool has preempted this lease (its cancel scope was cancelled)."""
        return self._preempted

    @property
    def released(self) -> bool:
        """True once the slots have been given back."""
        return self._released

    def preempt(self) -> None:
        """Cancel the holder's block (the pool calls this; so may the holder's supervisor).

        Raises:
            RuntimeError: if the lease is not preemptible.
        """
        if self.cancel_scope is None:
            raise RuntimeError("this lease was not acquired with preemptible=True")
        self._preempted = True
        self.cancel_scope.cancel()

    @enable_ki_protection
    def release(self) -> None:
        """Give the slots back; the pool hands them straight to the next waiter it chooses.

        Raises:
            RuntimeError: if the lease was already released.
        """
        if self._released:
            raise RuntimeError(f"{self!r} was already released")
        self._released = True
        self._release_fn(self)

    def __enter__(self) -> Lease:
        """Enter the lease's cancel scope (if preemptible); the block's exit releases it.

        Raises:
            RuntimeError: if the lease was already entered or released.
        """
        if self._entered or self._released:
            raise RuntimeError(f"{self!r} can be entered once, before it is released")
        self._entered = True
        if self.cancel_scope is not None:
            self.cancel_scope.__enter__()
        return self

    @enable_ki_protection
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        try:
            if self.cancel_scope is not None:
                return self.cancel_scope.__exit__(exc_type, exc, tb)
            return False
        finally:
            if not self._released:
                self.release()

    def __repr__(self) -> str:
        state = "released" if self._released else "held"
        extra = ", preempted" if self._preempted else ""
        return f"<Lease {self.priority} x{self.weight} {state} by {self.owner!r}{extra}>"
