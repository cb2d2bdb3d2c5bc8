"""PriorityPool: a capacity limiter with priority classes, minimum shares and round robin."""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Real
from types import MappingProxyType, TracebackType
from typing import Final, final

import trio
from trio.lowlevel import (
    Abort,
    RaiseCancelT,
    cancel_shielded_checkpoint,
    checkpoint_if_cancelled,
    current_task,
    enable_ki_protection,
    reschedule,
    wait_task_rescheduled,
)

from .._errors import PoolOverloaded
from ._context import default_priority as _default_priority
from ._lease import Lease
from ._owner import current_owner
from ._preemption import victims
from ._queue import Waiter
from ._rate_gate import RateGate
from ._scheduler import Scheduler
from ._shares import UNIT, parse_classes, wait_bound
from ._stats import (
    ClassRecorder,
    ClassStatistics,
    PoolStatistics,
    WaitHistogram,
    percentile,
)

__all__ = ["AcquireContext", "PriorityPool"]

_DEFAULT_CLASSES: Final[Mapping[str, float]] = MappingProxyType({"default": 0.0})


def _positive_number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number of seconds or per second, got {value!r}")
    number = float(value)
    if not number > 0 or math.isinf(number):
        raise ValueError(f"{name} must be a finite number above 0, got {value!r}")
    return number


def _count(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


@final
class PriorityPool:
    """A capacity limiter that serves urgent work first without starving anyone.

    Agents share scarce things: database connections, a rate-limited API, model slots.
    :class:`trio.CapacityLimiter` hands them out first come, first served: fair, but blind to
    priority, so an urgent request queues behind every batch job that came before it. Plain
    strict priority has the opposite flaw: under load the lowest class never runs. A
    ``PriorityPool`` has *classes*, highest priority first, each with a guaranteed minimum share
    of the grants::

        pool = PriorityPool(4, classes={"high": 0.0, "mid": 0.2, "low": 0.1})

        async with pool.acquire(priority="high") as lease:
            await call_the_model()          # holding one of the 4 slots

    Think of a clinic with four doctors: urgent patients go first, but every tenth patient
    called is from the routine queue, however many urgent ones keep arriving.

    **Who is served.** A freed slot goes straight to the chosen waiter; nobody can take it in
    between, and a newcomer never gets a slot while a waiter it does not outrank is queued.
    The choice is strict priority, except that each class earns credit (its share) on every
    grant while it waits, and a class owed a whole grant is served first (the highest such
    class). Within a class, owners take turns and each owner's requests are served in order,
    so one actor's fan-out gets one turn per round like each of its peers. The owner is the
    ``owner=`` argument, else the actor whose handler is running, else the current task. A
    request of weight k waits at the head until k slots are free together; nothing smaller
    is granted past it meanwhile.

    **The guarantee.** Shares count grants. While class ``i`` has waiters, at most ``B_i``
    grants in a row go to other classes, where, with ``s_i`` its share, ``a_i`` the number of
    classes above it with a share above 0 and ``S_i`` the sum of their shares:

    * ``B_i = (ceil(1/s_i) - 1) + (ceil(a_i / (1 - S_i)) - 1 if a_i else 0)`` if ``s_i > 0``;
    * ``B_0 = ceil(n / (1 - S)) - 1`` for the top class with share 0, where ``n`` classes have
      shares summing to ``S`` (unbounded if ``S == 1``, and 0 if ``n == 0``);
    * no bound for any other class with share 0: that is strict priority, by request.

    Every slot is handed on at least once per longest hold ``H``, so with weight-1 requests
    class ``i`` is served within ``ceil((B_i + 1) / capacity) * H`` of starting to wait. For the
    pool above, ``B`` is 2, 4 and 10 for high, mid and low; with holds of at most 50 ms that is
    50, 100 and 150 ms. (This is when the *class* is next served; a request also waits for the
    requests of its own class ahead of it.) :meth:`starvation_bound` and :meth:`wait_bound`
    compute these, and :meth:`statistics` reports the longest run seen.

    **Waiting.** Timeouts come from the caller's cancel scopes. A request cancelled while
    waiting takes no slot and changes no accounting; one granted in the same instant as its
    cancellation passes the slot on. ``max_waiting`` sheds load: a request that would wait in a
    class that already has that many waiters raises :exc:`~triactor.PoolOverloaded` at once.

    **Preemption.** ``acquire(..., preemptible=True)`` yields a lease whose block the pool may
    cancel: when a request of a higher class has waited longer than ``preempt_after``, the pool
    cancels preemptible leases of lower classes that were granted before it arrived (lowest
    class first), enough to cover its weight. The block ends quietly and ``lease.preempted``
    tells the holder to requeue its work. A lower class's guaranteed share is never preempted.

    **Rate gate.** With ``rate=`` (and ``burst=``), the pool is also a token bucket: a grant of
    weight k needs k free slots *and* k tokens, so nobody holds a slot while waiting for tokens.

    No background task runs: grants happen when slots are released and requests arrive, and the
    few timed wake-ups (tokens refilling, preemption) are deadlines on the waiting request's own
    cancel scope. A pool needs no ``async with`` and may be shared by any tasks in one
    ``trio.run``.

    It is not reentrant: a task holding slots that asks for more can wait for itself. Shares
    count grants, not slot-seconds; a class of long holds gets more time for the same share.

    Args:
        capacity: the number of slots.
        classes: priority class names, highest first, each mapped to its guaranteed minimum
            share of grants (0 for none). Shares must sum to at most 1.
        max_waiting: the most waiters per class (an int for every class, or a mapping from
            class name to limit; classes left out are unlimited). 0 means never wait.
        preempt_after: seconds a waiter waits before it may preempt lower-class leases.
        rate: tokens per second of the rate gate (no gate if None).
        burst: tokens the gate holds at most (and starts with); default 1.
        default_priority: the class used when neither ``priority=`` nor the actor's default
            priority names one; default the lowest class.
        stats_window: how many recent grants per class the wait percentiles cover.

    Raises:
        TypeError: if an argument is of the wrong kind.
        ValueError: if ``capacity`` is below 1, a share is outside [0, 1], the shares sum to
            more than 1, a class name is unknown, or a limit or rate is out of range.
    """

    __slots__ = (
        "_busy",
        "_busy_stamp",
        "_capacity",
        "_default_index",
        "_gate",
        "_in_use",
        "_index",
        "_leases",
        "_max_waiting",
        "_preempt_after",
        "_preemptions",
        "_recorders",
        "_sched",
        "_seq",
        "_started",
    )

    def __init__(
        self,
        capacity: int,
        classes: Mapping[str, float] = _DEFAULT_CLASSES,
        *,
        max_waiting: int | Mapping[str, int] | None = None,
        preempt_after: float | None = None,
        rate: float | None = None,
        burst: float | None = None,
        default_priority: str | None = None,
        stats_window: int = 1024,
    ) -> None:
        self._capacity = _count("capacity", capacity, 1)
        specs = parse_classes(classes)
        self._index = {name: i for i, (name, _) in enumerate(specs)}
        self._sched = Scheduler(specs)
        window = _count("stats_window", stats_window, 1)
        self._recorders = tuple(ClassRecorder(window) for _ in specs)
        self._max_waiting = self._parse_max_waiting(max_waiting)
        self._preempt_after = (
            None if preempt_after is None else _positive_number("preempt_after", preempt_after)
        )
        if rate is None:
            if burst is not None:
                raise ValueError("burst= only makes sense with rate=; pass both or neither")
            self._gate: RateGate | None = None
        else:
            rate_value = _positive_number("rate", rate)
            burst_value = 1.0 if burst is None else _positive_number("burst", burst)
            if burst_value < 1:
                raise ValueError(f"burst must be at least 1 token, got {burst!r}")
            self._gate = RateGate(rate_value, burst_value)
        if default_priority is None:
            self._default_index = len(specs) - 1
        else:
            self._default_index = self._lookup(default_priority, "default_priority")
        self._in_use = 0
        self._leases: dict[int, Lease] = {}
        self._seq = 0
        self._preemptions = 0
        self._started: float | None = None
        self._busy = 0.0
        self._busy_stamp = 0.0

    def _parse_max_waiting(self, value: int | Mapping[str, int] | None) -> list[int | None]:
        count = len(self._index)
        if value is None:
            return [None] * count
        if isinstance(value, Mapping):
            limits: list[int | None] = [None] * count
            for name, limit in value.items():
                limits[self._lookup(name, "max_waiting")] = _count(
                    f"max_waiting[{name!r}]", limit, 0
                )
            return limits
        return [_count("max_waiting", value, 0)] * count

    def _lookup(self, name: object, what: str) -> int:
        if not isinstance(name, str):
            raise TypeError(f"{what} must be a priority class name (str), got {name!r}")
        index = self._index.get(name)
        if index is None:
            raise ValueError(
                f"{what} {name!r} is not a class of this pool; its classes are "
                f"{', '.join(map(repr, self._index))}"
            )
        return index

    # -- introspection ------------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        """The number of slots."""
        return self._capacity

    @property
    def classes(self) -> tuple[str, ...]:
        """The class names, highest priority first."""
        return tuple(self._index)

    @property
    def in_use(self) -> int:
        """Slots held now."""
        return self._in_use

    @property
    def waiting(self) -> int:
        """Requests waiting now, all classes."""
        return self._sched.waiting

    def starvation_bound(self, priority: str) -> int | None:
        """The most grants in a row that can go to other classes while ``priority`` waits.

        None means the class has no guarantee (see the class docstring for the formula).

        Raises:
            ValueError: if ``priority`` is not a class of this pool.
        """
        return self._sched.classes[self._lookup(priority, "priority")].bound

    def wait_bound(self, priority: str, max_hold: float, *, max_weight: int = 1) -> float:
        """Seconds within which class ``priority`` is next served once it waits.

        Holds ``max_hold`` seconds at most and requests of weight at most ``max_weight`` are
        assumed. With weight 1 and no rate gate this is
        ``ceil((B + 1) / capacity) * max_hold``; otherwise ``(B + 1) * (max_hold + max_weight /
        rate)``. Returns ``inf`` if the class has no guarantee.

        Raises:
            ValueError: if ``priority`` is unknown or ``max_hold`` is not above 0.
        """
        bound = self.starvation_bound(priority)
        hold = _positive_number("max_hold", max_hold)
        weight = self._check_weight(max_weight)
        return wait_bound(
            bound,
            capacity=self._capacity,
            max_hold=hold,
            max_weight=weight,
            rate=None if self._gate is None else self._gate.rate,
        )

    def _wait_histograms(self) -> dict[str, WaitHistogram]:
        """Return each class's :class:`WaitHistogram`: every wait since the pool was made.

        Buckets are fixed (:data:`~triactor.pools.WAIT_BUCKETS`), as Prometheus histograms
        expect; ``statistics()`` gives percentiles of the recent waits instead.
        """
        return {
            state.name: recorder.histogram()
            for state, recorder in zip(self._sched.classes, self._recorders, strict=True)
        }

    def statistics(self) -> PoolStatistics:
        """Return a :class:`PoolStatistics` snapshot (see its fields)."""
        try:
            now = trio.current_time()
        except RuntimeError:  # outside trio.run: report as of the last change
            now = self._busy_stamp
        total = self._sched.grants
        classes: dict[str, ClassStatistics] = {}
        for state, rec in zip(self._sched.classes, self._recorders, strict=True):
            ordered = sorted(rec.waits)
            oldest = state.queue.oldest_arrival()
            classes[state.name] = ClassStatistics(
                name=state.name,
                priority=state.index,
                min_share=state.units / UNIT,
                waiting=len(state.queue),
                holding=rec.holding,
                wait_p50=percentile(ordered, 0.50),
                wait_p99=percentile(ordered, 0.99),
                wait_max=rec.wait_max,
                oldest_wait=0.0 if math.isinf(oldest) else max(0.0, now - oldest),
                grants=state.grants,
                share=state.grants / total if total else 0.0,
                longest_run=state.longest_run,
                run_bound=state.bound,
                cancellations=rec.cancellations,
                rejections=rec.rejections,
                preemptions=rec.preemptions,
            )
        elapsed = 0.0 if self._started is None else now - self._started
        busy = self._busy + self._in_use * max(0.0, now - self._busy_stamp)
        first = next(iter(self._leases.values()), None)
        return PoolStatistics(
            capacity=self._capacity,
            in_use=self._in_use,
            waiting=self._sched.waiting,
            leases=len(self._leases),
            grants=total,
            utilisation=busy / (self._capacity * elapsed) if elapsed > 0 else 0.0,
            longest_hold=0.0 if first is None else max(0.0, now - first.granted_at),
            tokens=None if self._gate is None else self._gate.tokens(now),
            preemptions=self._preemptions,
            classes=MappingProxyType(classes),
        )

    def __repr__(self) -> str:
        return f"<PriorityPool {self._in_use}/{self._capacity} in use, {self.waiting} waiting>"

    # -- requests -----------------------------------------------------------------------------

    def _resolve(self, priority: str | None) -> int:
        if priority is not None:
            return self._lookup(priority, "priority")
        inherited = _default_priority.get()
        if inherited is None:
            return self._default_index
        if inherited not in self._index:
            raise ValueError(
                f"the actor's default priority {inherited!r} is not a class of this pool "
                f"(classes: {', '.join(map(repr, self._index))}); pass priority= explicitly"
            )
        return self._index[inherited]

    def _check_weight(self, weight: int) -> int:
        _count("weight", weight, 1)
        if weight > self._capacity:
            raise ValueError(
                f"weight {weight} exceeds the pool's capacity {self._capacity}; such a request "
                "could never be granted"
            )
        if self._gate is not None and weight > self._gate.burst:
            raise ValueError(
                f"weight {weight} exceeds the rate gate's burst {self._gate.burst:g}; such a "
                "request could never be granted"
            )
        return weight

    def acquire(
        self,
        priority: str | None = None,
        weight: int = 1,
        *,
        owner: object = None,
        preemptible: bool = False,
    ) -> AcquireContext:
        """Wait for ``weight`` slots; use as ``async with pool.acquire(...) as lease:``.

        The slots are given back when the block exits, however it exits. Entering the block is
        a checkpoint even when slots are free (like :meth:`trio.CapacityLimiter.acquire`).

        Args:
            priority: the class name; default the actor's priority (the ``default_priority``
                context variable), else the pool's ``default_priority``, else the lowest class.
            weight: slots to hold at once, 1 to ``capacity``.
            owner: round-robin key; default the actor, else the current task.
            preemptible: let the pool cancel the block for a higher class (see the class
                docstring); check ``lease.preempted`` afterwards.

        Raises:
            ValueError: at once, for an unknown class or a weight out of range.
            TypeError: at once, for arguments of the wrong kind.
            PoolOverloaded: on entering, if the request would wait and its class already has
                ``max_waiting`` waiters.
        """
        index = self._resolve(priority)
        return AcquireContext(self, index, self._check_weight(weight), owner, preemptible)

    @enable_ki_protection
    def acquire_nowait(
        self,
        priority: str | None = None,
        weight: int = 1,
        *,
        owner: object = None,
        preemptible: bool = False,
    ) -> Lease:
        """Take ``weight`` slots if the pool would grant them right now, without waiting.

        Queued waiters are not bypassed: this fails while a waiter the request does not outrank
        is queued, even with slots free. Give the slots back with ``lease.release()`` or a
        ``with lease:`` block (which also arms preemption). Arguments as for :meth:`acquire`.

        Raises:
            trio.WouldBlock: if the request would have to wait.
            ValueError: for an unknown class or a weight out of range.
            TypeError: for arguments of the wrong kind.
        """
        index = self._resolve(priority)
        self._check_weight(weight)
        now = trio.current_time()
        owner = current_owner() if owner is None else owner
        waiter = self._arrive(index, weight, owner, preemptible, now)
        if waiter.lease is None:
            self._withdraw(waiter, now)
            raise trio.WouldBlock
        return waiter.lease

    @enable_ki_protection
    async def _acquire(self, index: int, weight: int, owner: object, preemptible: bool) -> Lease:
        await checkpoint_if_cancelled()
        now = trio.current_time()
        owner = current_owner() if owner is None else owner
        waiter = self._arrive(index, weight, owner, preemptible, now)
        if waiter.lease is not None:
            await cancel_shielded_checkpoint()
            return waiter.lease
        state = self._sched.classes[index]
        limit = self._max_waiting[index]
        if limit is not None and len(state.queue) > limit:
            self._withdraw(waiter, now)
            self._recorders[index].rejections += 1
            await cancel_shielded_checkpoint()
            raise PoolOverloaded(
                f"priority class {state.name!r} already has {limit} waiters (max_waiting); "
                "the request was shed. Retry later, or raise max_waiting"
            )
        if self._preempt_after is not None and victims(self._leases.values(), waiter):
            waiter.preempt_at = now + self._preempt_after
        return await self._wait(waiter)

    def _arrive(
        self, index: int, weight: int, owner: object, preemptible: bool, now: float
    ) -> Waiter:
        """Queue a new request and dispatch; the request holds a lease if it was granted."""
        if self._started is None:
            self._started = self._busy_stamp = now
        if self._gate is not None:
            # Hand out tokens that refilled since the last timer first, so that the dispatch
            # below can grant nobody but the newcomer.
            self._dispatch(now)
        self._seq += 1
        waiter = Waiter(current_task(), index, weight, owner, preemptible, self._seq, now)
        self._sched.enqueue(waiter)
        self._dispatch(now)
        return waiter

    async def _wait(self, waiter: Waiter) -> Lease:
        """Sleep until granted; wake on the waiter's own timers (tokens, preemption)."""

        def abort(_: RaiseCancelT) -> Abort:
            waiter.parked = False
            timer = waiter.timer
            if timer is None or timer.deadline > trio.current_time():
                # Cancelled from outside: leave the queue right now, before any grant.
                self._leave(waiter)
            # Else our own timer is due: keep our place; the loop below acts and sleeps again.
            # (Reading timer.cancel_called here could cancel the scope re-entrantly.)
            return Abort.SUCCEEDED

        try:
            while waiter.lease is None:
                with trio.CancelScope(deadline=waiter.deadline()) as timer:
                    waiter.timer = timer
                    waiter.parked = True
                    await wait_task_rescheduled(abort)
                waiter.timer = None
                if waiter.lease is None:
                    self._on_timer(waiter)
            # A grant that raced a cancellation of this task: pass it on, don't use it.
            await checkpoint_if_cancelled()
        except BaseException:
            waiter.timer = None
            self._abandon(waiter)
            raise
        return waiter.lease

    def _on_timer(self, waiter: Waiter) -> None:
        now = trio.current_time()
        waiter.tokens_at = math.inf
        if now >= waiter.preempt_at:
            self._preempt_for(waiter, now)
        self._dispatch(now)

    def _preempt_for(self, waiter: Waiter, now: float) -> None:
        assert self._preempt_after is not None
        candidates = victims(self._leases.values(), waiter)
        freed = 0
        while candidates and freed < waiter.weight:
            lease = candidates.pop(0)
            lease.preempt()
            freed += lease.weight
            self._recorders[lease.index].preemptions += 1
            self._preemptions += 1
        waiter.preempt_at = now + self._preempt_after if candidates else math.inf

    # -- hand-off -----------------------------------------------------------------------------

    def _dispatch(self, now: float) -> None:
        """Grant to the chosen waiter for as long as slots and tokens allow."""
        sched = self._sched
        gate = self._gate
        while (waiter := sched.target()) is not None:
            if self._in_use + waiter.weight > self._capacity:
                return  # it gathers freed slots; nobody is granted past it
            if gate is not None and not gate.try_take(waiter.weight, now):
                ready = gate.ready_at(waiter.weight, now)
                waiter.tokens_at = ready
                timer = waiter.timer
                if timer is not None and timer.deadline > ready:
                    timer.deadline = ready
                return
            self._grant(waiter, now)

    def _grant(self, waiter: Waiter, now: float) -> None:
        self._sched.take(waiter)
        self._account(now)
        self._in_use += waiter.weight
        recorder = self._recorders[waiter.index]
        recorder.holding += waiter.weight
        recorder.record_wait(now - waiter.arrived)
        self._seq += 1
        lease = Lease(
            self._release,
            priority=self._sched.classes[waiter.index].name,
            index=waiter.index,
            weight=waiter.weight,
            owner=waiter.owner,
            granted_at=now,
            waited=now - waiter.arrived,
            seq=self._seq,
            preemptible=waiter.preemptible,
        )
        self._leases[lease.seq] = lease
        waiter.lease = lease
        if waiter.parked:
            waiter.parked = False
            reschedule(waiter.task)

    def _account(self, now: float) -> None:
        if now > self._busy_stamp:
            self._busy += self._in_use * (now - self._busy_stamp)
            self._busy_stamp = now

    @enable_ki_protection
    def _release(self, lease: Lease) -> None:
        now = trio.current_time()
        self._account(now)
        self._in_use -= lease.weight
        self._recorders[lease.index].holding -= lease.weight
        del self._leases[lease.seq]
        self._dispatch(now)

    def _withdraw(self, waiter: Waiter, now: float) -> None:
        """Take a waiter out without a grant (rejected, nowait, cancelled) and re-dispatch."""
        self._sched.remove(waiter)
        waiter.removed = True
        self._dispatch(now)

    def _leave(self, waiter: Waiter) -> None:
        self._recorders[waiter.index].cancellations += 1
        self._withdraw(waiter, trio.current_time())

    def _abandon(self, waiter: Waiter) -> None:
        lease = waiter.lease
        if lease is not None:
            self._recorders[waiter.index].cancellations += 1
            if not lease.released:
                lease.release()
        elif not waiter.removed:
            self._leave(waiter)


@final
class AcquireContext:
    """What :meth:`PriorityPool.acquire` returns: ``async with`` it to hold the slots.

    Entering waits for the grant and yields the :class:`Lease` (inside its cancel scope if
    preemptible); exiting gives the slots back on every path.
    """

    __slots__ = ("_index", "_lease", "_owner", "_pool", "_preemptible", "_weight")

    def __init__(
        self, pool: PriorityPool, index: int, weight: int, owner: object, preemptible: bool
    ) -> None:
        self._pool = pool
        self._index = index
        self._weight = weight
        self._owner = owner
        self._preemptible = preemptible
        self._lease: Lease | None = None

    @enable_ki_protection
    async def __aenter__(self) -> Lease:
        if self._lease is not None:
            raise RuntimeError("this pool.acquire(...) was already entered; call acquire again")
        lease = await self._pool._acquire(self._index, self._weight, self._owner, self._preemptible)
        self._lease = lease
        return lease.__enter__()

    @enable_ki_protection
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        assert self._lease is not None
        return self._lease.__exit__(exc_type, exc, tb)
