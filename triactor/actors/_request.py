"""Request/reply plumbing for ``ask``: the envelope that carries a request and its reply slot."""

from __future__ import annotations

from typing import Any, Protocol, final

import outcome
from trio.lowlevel import (
    Abort,
    RaiseCancelT,
    Task,
    cancel_shielded_checkpoint,
    current_task,
    enable_ki_protection,
    reschedule,
    wait_task_rescheduled,
)

__all__ = ["Delivery", "LateReplySink", "Request"]


class LateReplySink(Protocol):
    """Where a reply goes when its asker has stopped waiting (the replying actor's cell)."""

    def late_reply(self, request: Request, result: outcome.Outcome[Any]) -> None:
        """Record the reply to ``request`` as a late dead letter."""


class Delivery(Protocol):
    """Where the outcome of a message that came from outside the process goes (a transport).

    A transport queues such a message as a :class:`Request` carrying a delivery: when the
    handler ends, ``done`` gets its outcome (to acknowledge the message and, for an ask, send
    the reply back); when the actor stops for good before handling it, ``release`` hands it back
    to the transport undelivered (at-least-once: another host takes it), instead of a dead
    letter.
    """

    def done(self, request: Request, result: outcome.Outcome[Any]) -> None:
        """The handler ended (or the message was refused) with ``result``."""

    def release(self, request: Request) -> None:
        """The message was not handled here; give it back for another delivery."""


@final
class Request:
    """A message sent with ``ask``, queued in place of the bare message, with its reply slot.

    The asker parks on the request; the actor completes it with a value or an exception. If the
    asker stopped waiting (timeout, cancellation) before the reply came, the reply is handed to
    the sink's ``late_reply`` instead, which puts it in dead letters labelled late.

    A request completes exactly once; later completions are ignored.
    """

    __slots__ = ("_asker", "_outcome", "_sink", "_state", "chain", "delivery", "message")

    _PENDING = 0
    _DONE = 1
    _ABANDONED = 2

    def __init__(
        self,
        message: object,
        sink: LateReplySink,
        chain: tuple[str, ...] = (),
        delivery: Delivery | None = None,
    ) -> None:
        self.message = message
        self._sink = sink
        #: Set for a message that came through a transport: it takes the outcome instead of a
        #: waiting asker in this process.
        self.delivery = delivery
        #: The paths of the actors waiting on this request, the asker last: how cycles are found.
        self.chain = chain
        self._asker: Task | None = None
        self._outcome: outcome.Outcome[Any] | None = None
        self._state = Request._PENDING

    @property
    def done(self) -> bool:
        """True once a reply (or error) was delivered or handed to dead letters."""
        return self._state == Request._DONE

    @property
    def abandoned(self) -> bool:
        """True if the asker stopped waiting before a reply came."""
        return self._state == Request._ABANDONED

    @enable_ki_protection
    def complete(self, result: outcome.Outcome[Any]) -> None:
        """Deliver the reply: wake the asker, keep it for an asker not yet waiting, or go late."""
        state = self._state
        if state == Request._DONE:
            return
        if state == Request._ABANDONED:
            self._state = Request._DONE
            self._sink.late_reply(self, result)
            return
        self._state = Request._DONE
        if self.delivery is not None:
            self.delivery.done(self, result)
            return
        asker = self._asker
        if asker is None:
            self._outcome = result
        else:
            self._asker = None
            reschedule(asker, result)

    @enable_ki_protection
    def release(self) -> bool:
        """Give a transport's message back undelivered. Returns False for a local request."""
        delivery = self.delivery
        if delivery is None or self._state != Request._PENDING:
            return False
        self._state = Request._DONE
        delivery.release(self)
        return True

    @enable_ki_protection
    async def wait(self) -> Any:
        """Wait for the reply and return it (or raise the error it carries).

        Cancellation abandons the request: the reply, when it comes, goes to the sink as a
        late reply. KeyboardInterrupt-safe: a Ctrl-C never leaves the asker registered for a
        reschedule it will not be there to take (it is delivered at the wait instead).
        """
        if self._outcome is not None:
            # The reply came before the asker parked (the actor ran while the asker was being
            # admitted to a full mailbox); yield once anyway so ask is always a schedule point.
            result, self._outcome = self._outcome, None
            await cancel_shielded_checkpoint()
            return result.unwrap()
        self._asker = current_task()
        return await wait_task_rescheduled(self._abort)

    def _abort(self, _: RaiseCancelT) -> Abort:
        """The asker stopped waiting (Trio's abort function for its park)."""
        self._asker = None
        self._state = Request._ABANDONED
        return Abort.SUCCEEDED
