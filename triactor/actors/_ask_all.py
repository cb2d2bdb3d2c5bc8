"""``ask_all``: ask many actors at once and get the replies back in request order."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, Final, TypeVar, final

import trio
from trio.lowlevel import enable_ki_protection

from .._groups import unwrapped_group
from .._safe import add_note, safe_repr
from ._ref import ActorRef

__all__ = ["ask_all"]

M = TypeVar("M")
R = TypeVar("R")

# How many unanswered targets a timeout error names before it summarises the rest.
_NAMED: Final = 10


@final
class _Missing:
    __slots__ = ()


_MISSING: Final = _Missing()


@enable_ki_protection  # its nursery must be exited on every path, even a Ctrl-C's
async def ask_all(
    requests: Iterable[tuple[ActorRef[M, R], M]],
    *,
    timeout: float | None = None,
    priority: int = 0,
) -> list[R]:
    """Ask every ``(ref, message)`` pair at once; return the replies in request order.

    The fan-out a pipeline otherwise writes by hand (a nursery and a results dict): all the
    asks wait at the same time, so the whole costs about the slowest reply, not the sum::

        found = await triactor.ask_all([(fetcher, Fetch(url)) for url in urls], timeout=10)

    The first failure cancels the asks still waiting and is raised as itself: the handler's
    own exception (with the note naming the actor and the message type), ``ActorStopped``,
    ``MailboxFull``... A later failure that happened before the cancellation reached it is
    added to it as a note. The cancelled asks' replies, when they come, go to dead letters
    labelled late; the actors themselves are not interrupted.

    For type checkers, the replies are typed by the refs' reply type (``list[Found]`` for refs
    of an ``Actor[Fetch, Found]``). Mixing refs of differently typed actors in one list needs
    the list annotated as ``list[tuple[ActorRef, object]]`` (the replies are then ``Any``).

    Args:
        requests: ``(ref, message)`` pairs; one ref may appear several times.
        timeout: seconds for the whole fan-out; None waits as long as the caller's cancel
            scopes allow.
        priority: the mailbox priority of every request.

    Returns:
        The replies, one per request, in the order of ``requests``.

    Raises:
        trio.TooSlowError: if ``timeout`` passes first; the message names the targets (and
            message types) that had not answered.
        TypeError: if an item of ``requests`` is not a ``(ActorRef, message)`` pair.
        Exception: the first failure among the asks, as :meth:`ActorRef.ask` raises it.
    """
    pairs: list[tuple[ActorRef[M, R], M]] = []
    for index, pair in enumerate(requests):
        if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], ActorRef)):
            raise TypeError(
                f"ask_all takes (ref, message) pairs; item {index} is {pair!r}. "
                "Write ask_all([(ref, Message(...)), ...])"
            )
        pairs.append(pair)
    if not pairs:
        await trio.lowlevel.checkpoint()
        return []
    results: list[Any] = [_MISSING] * len(pairs)
    failures: list[Exception] = []

    async def ask_one(index: int, ref: ActorRef[M, R], message: M) -> None:
        try:
            results[index] = await ref.ask(message, priority=priority)
        except Exception as exc:
            failures.append(exc)
            nursery.cancel_scope.cancel()

    with trio.move_on_after(math.inf if timeout is None else timeout) as deadline:
        with unwrapped_group():
            async with trio.open_nursery() as nursery:
                for index, (ref, message) in enumerate(pairs):
                    nursery.start_soon(ask_one, index, ref, message)
    if failures:
        first = failures[0]
        for later in failures[1:]:
            add_note(first, f"ask_all: another request failed too: {safe_repr(later)}")
        raise first
    if deadline.cancelled_caught:
        raise trio.TooSlowError(_timeout_message(pairs, results, timeout))
    return results


def _timeout_message(
    pairs: Sequence[tuple[ActorRef[Any, Any], object]], results: list[Any], timeout: float | None
) -> str:
    waiting = [
        f"{ref.path} ({type(message).__qualname__})"
        for (ref, message), result in zip(pairs, results, strict=True)
        if result is _MISSING
    ]
    named = ", ".join(waiting[:_NAMED])
    if len(waiting) > _NAMED:
        named += f" and {len(waiting) - _NAMED} more"
    return (
        f"ask_all: {len(waiting)} of {len(pairs)} requests got no reply within {timeout} s: "
        f"{named}; their late replies go to dead letters. Raise timeout=, or find out what "
        "keeps those actors busy (ref.statistics(), system.snapshot())"
    )
