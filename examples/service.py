"""An HTTP service in front of an agent actor, on Trio (hypercorn serving a plain ASGI app).

    pip install -e '.[examples]'
    python -m examples.service [--host 127.0.0.1] [--port 8000] [--ask-timeout 2]

    curl -s localhost:8000/ask -d '{"question": "what is an actor?"}'     # 200 + the answer
    curl -s localhost:8000/ask -d '{"question": "hard", "think": 5}'      # 504 after 2 s
    curl -s localhost:8000/ask -d '{"question": "oops", "fail": true}'    # 500, error logged
    curl -s localhost:8000/health                                         # the agent's numbers

Every ``POST /ask`` is forwarded to the ``agent`` actor with ``ask``, and each way that can go
wrong has its own status code, so that a client (or a load balancer) knows what to do:

- **200** with the agent's answer;
- **503** with ``Retry-After`` when the agent's mailbox is full: it holds ``mailbox_capacity``
  questions and refuses more at once (``Overflow.FAIL``), instead of letting requests pile up
  without bound; also while the service is stopping;
- **504** when the agent does not answer within ``ask_timeout``: a question still queued
  then is never worked on (it goes to dead letters as expired), and an answer that comes late
  goes to dead letters too, never to another request;
- **500** when the agent's handler raised: the error is logged, and the agent's supervisor
  restarts it, so the next request is served again;
- **400** for a malformed request.

``think`` (extra seconds of simulated model time) and ``fail`` (make the agent's tool fail)
are demo knobs, so that each status can be seen with curl. SIGINT/SIGTERM stop the service
gracefully: the HTTP server stops taking connections and finishes its requests, then the actor
system drains and stops.
"""

from __future__ import annotations

import argparse
import functools
import json
import signal
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import attrs
import trio
from loguru import logger

try:
    import hypercorn.trio
    from hypercorn.config import Config as HypercornConfig
except ImportError as exc:  # pragma: no cover - depends on what is installed
    raise SystemExit(
        f"examples.service needs hypercorn ({exc}); install the examples extra: "
        "pip install -e '.[examples]'"
    ) from exc

import triactor
from triactor import (
    Actor,
    ActorStopped,
    ActorSystem,
    ChildSpec,
    MailboxFull,
    Overflow,
    Supervisor,
    handler,
    open_actor_system,
)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

MAX_BODY = 64 * 1024


@attrs.frozen
class Question:
    """A question for the agent; ``think`` and ``fail`` are demo knobs (see the module doc)."""

    text: str
    think: float = 0.0
    fail: bool = False


class AgentToolFailed(Exception):
    """The agent's (simulated) tool failed: the handler raises it, the endpoint answers 500."""


class Agent(Actor):
    """Answers questions one at a time, as a model-backed agent would (simulated latency).

    Its mailbox is small and refuses overflow (``Overflow.FAIL``): a full mailbox means the
    service is saturated, and the endpoint answers 503 at once rather than queueing more.
    """

    mailbox_capacity = 16
    overflow = Overflow.FAIL

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.answered = 0

    @handler
    async def answer(self, msg: Question) -> str:
        await trio.sleep(self.latency + msg.think)  # the model call: other actors keep going
        if msg.fail:
            raise AgentToolFailed(f"the agent's tool failed on {msg.text!r}")
        self.answered += 1
        return f"You asked {msg.text!r}; this is answer {self.answered} of this incarnation."


@attrs.frozen
class ServiceConfig:
    """The service's knobs.

    Attributes:
        ask_timeout: seconds a request waits for the agent before answering 504.
        mailbox_capacity: questions the agent holds before the endpoint answers 503.
        retry_after: the ``Retry-After`` seconds of a 503.
        agent_latency: the simulated model time of every answer, in seconds.
        agent_shutdown_timeout: seconds the agent may take to drain when the service stops.
        max_think: the largest ``think`` a request may ask for.
    """

    ask_timeout: float = 2.0
    mailbox_capacity: int = 16
    retry_after: int = 1
    agent_latency: float = 0.05
    agent_shutdown_timeout: float = 5.0
    max_think: float = 30.0


def build_tree(config: ServiceConfig | None = None) -> Supervisor:
    """The service's supervision tree: the agent, restarted after each crash."""
    config = config or ServiceConfig()
    agent = ChildSpec(
        Agent,
        args=(config.agent_latency,),
        name="agent",
        mailbox_capacity=config.mailbox_capacity,
        shutdown_timeout=config.agent_shutdown_timeout,
    )
    return Supervisor("service", [agent], max_restarts=20, within=60.0)


class BadRequest(ValueError):
    """The request body is not a valid question (answered 400)."""


def parse_question(body: bytes, max_think: float) -> Question:
    """Parse a ``POST /ask`` body into a :class:`Question`.

    Raises:
        BadRequest: for invalid JSON, a missing or empty question, or a bad knob.
    """
    try:
        payload = json.loads(body or b"null")
    except ValueError as exc:
        raise BadRequest(f"the body is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise BadRequest('send a JSON object: {"question": "..."}')
    text = payload.get("question")
    if not isinstance(text, str) or not text.strip():
        raise BadRequest('"question" must be a non-empty string')
    think = payload.get("think", 0.0)
    if not isinstance(think, int | float) or isinstance(think, bool) or not 0 <= think <= max_think:
        raise BadRequest(f'"think" must be a number of seconds from 0 to {max_think:g}')
    fail = payload.get("fail", False)
    if not isinstance(fail, bool):
        raise BadRequest('"fail" must be true or false')
    return Question(text, float(think), fail)


class _Disconnected(Exception):
    """The client went away before sending its whole request."""


async def _read_body(receive: Receive) -> bytes | None:
    """The request body, or None if it is larger than MAX_BODY.

    Raises:
        _Disconnected: if the client disconnects first.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        event = await receive()
        if event["type"] == "http.disconnect":
            raise _Disconnected
        chunk = event.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not event.get("more_body", False):
            return b"".join(chunks)


async def _respond(
    send: Send, status: int, payload: object, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class AgentApp:
    """The ASGI application: ``POST /ask`` goes to the agent, ``GET /health`` reports on it."""

    def __init__(self, system: ActorSystem, config: ServiceConfig) -> None:
        self.system = system
        self.config = config
        self.agent = system.lookup("agent")  # the ref stays valid across the agent's restarts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == "/ask":
            if method != "POST":
                await _respond(send, 405, {"error": "use POST"}, [(b"allow", b"POST")])
                return
            await self._ask(receive, send)
        elif path == "/health" and method == "GET":
            await self._health(send)
        else:
            await _respond(send, 404, {"error": f"no route {method} {path}"})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            event = await receive()
            if event["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif event["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _ask(self, receive: Receive, send: Send) -> None:
        try:
            body = await _read_body(receive)
        except _Disconnected:
            return
        if body is None:
            await _respond(send, 413, {"error": f"the body is over {MAX_BODY} bytes"})
            return
        try:
            question = parse_question(body, self.config.max_think)
        except BadRequest as exc:
            await _respond(send, 400, {"error": str(exc)})
            return
        retry = [(b"retry-after", str(self.config.retry_after).encode())]
        try:
            answer = await self.agent.ask(question, timeout=self.config.ask_timeout)
        except MailboxFull:
            await _respond(send, 503, {"error": "the agent is busy; retry later"}, retry)
        except ActorStopped:
            await _respond(send, 503, {"error": "the agent is stopping; retry later"}, retry)
        except trio.TooSlowError:
            await _respond(
                send,
                504,
                {"error": f"the agent did not answer within {self.config.ask_timeout:g} s"},
            )
        except Exception as exc:
            # The supervisor has logged the crash with its traceback; this line ties it to
            # the request. The client gets no internals.
            logger.error("POST /ask: the agent failed with {!r}; answered 500", exc)
            await _respond(send, 500, {"error": "the agent failed; see the service log"})
        else:
            await _respond(send, 200, {"answer": answer})

    async def _health(self, send: Send) -> None:
        stats = self.agent.statistics()
        await _respond(
            send,
            200,
            {
                "agent": {
                    "state": stats.state,
                    "processed": stats.processed,
                    "failures": stats.failures,
                    "restarts": stats.restarts,
                    "queued": stats.mailbox.depth,
                    "capacity": stats.mailbox.capacity,
                },
                "dead_letters": self.system.dead_letters.count,
            },
        )


async def serve(
    config: ServiceConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    shutdown: trio.Event | None = None,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the actor system and the HTTP server until ``shutdown`` is set.

    ``await nursery.start(serve, config, port=0)`` returns the URL it listens on (port 0
    picks a free port). Setting ``shutdown`` stops the server gracefully (no new connections,
    requests in flight finish), then the actor system drains and stops.
    """
    config = config or ServiceConfig()
    shutdown = trio.Event() if shutdown is None else shutdown
    http = HypercornConfig()
    http.bind = [f"{host}:{port}"]
    http.graceful_timeout = config.ask_timeout + 1.0
    async with open_actor_system() as system:
        await system.spawn(build_tree(config))
        app = AgentApp(system, config)
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(
                functools.partial(hypercorn.trio.serve, app, http, shutdown_trigger=shutdown.wait)
            )
            logger.info("listening on {}", binds[0])
            task_status.started(binds[0])


async def _stop_on_signals(
    shutdown: trio.Event, scope: trio.CancelScope, task_status: trio.TaskStatus[None]
) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for signum in signals:
            if not shutdown.is_set():
                logger.warning("{}: stopping gracefully", signal.Signals(signum).name)
                shutdown.set()
            else:
                logger.warning("{} again: stopping now", signal.Signals(signum).name)
                scope.cancel()


async def _main(config: ServiceConfig, host: str, port: int) -> None:
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(_stop_on_signals, shutdown, nursery.cancel_scope)
        await serve(config, host=host, port=port, shutdown=shutdown)
        nursery.cancel_scope.cancel()
    logger.info("service stopped")


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port (0: any free port)")
    parser.add_argument("--ask-timeout", type=float, default=2.0, help="seconds before a 504")
    parser.add_argument("--capacity", type=int, default=16, help="agent mailbox capacity")
    args = parser.parse_args(argv)
    config = ServiceConfig(ask_timeout=args.ask_timeout, mailbox_capacity=args.capacity)
    # The program, not the library, decides where logs go: one loguru sink for the service's
    # lines and triactor's, without variable values in tracebacks (they may hold secrets).
    logger.remove()
    logger.add(sys.stderr, level="INFO", backtrace=False, diagnose=False)
    triactor.configure_logging(to="loguru")
    trio.run(_main, config, args.host, args.port)


if __name__ == "__main__":
    main()
