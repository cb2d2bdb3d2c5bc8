"""The HTTP service example through a real server on a loopback port and a real HTTP client:
200, 400/404/405, 500 (logged, agent restarted), 503 with Retry-After, 504.

The server runs on Trio's real clock (sockets and a mock clock do not mix); every wait is
bounded, and the overload test waits for the agent's state instead of sleeping.
"""

from __future__ import annotations

import functools
import http.client
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import attrs
import pytest
import trio

from examples import service
from examples.service import ServiceConfig

WAIT = 10.0  # seconds: the bound on any wait


@attrs.frozen
class Reply:
    status: int
    headers: dict[str, str]
    body: dict[str, object]


def _request(url: str, method: str, path: str, body: bytes | None) -> Reply:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=WAIT)
    try:
        connection.request(method, path, body=body)
        response = connection.getresponse()
        payload = json.loads(response.read())
        headers = {name.lower(): value for name, value in response.getheaders()}
        return Reply(response.status, headers, payload)
    finally:
        connection.close()


async def request(url: str, method: str, path: str, payload: object = None) -> Reply:
    """One HTTP request from a worker thread (the stdlib client blocks)."""
    body = None if payload is None else json.dumps(payload).encode()
    return await trio.to_thread.run_sync(_request, url, method, path, body)


async def ask(url: str, **payload: object) -> Reply:
    return await request(url, "POST", "/ask", payload)


@asynccontextmanager
async def running_service(config: ServiceConfig) -> AsyncIterator[str]:
    """The example service on 127.0.0.1 and a free port; yields its URL."""
    shutdown = trio.Event()
    with trio.fail_after(WAIT * 2):
        async with trio.open_nursery() as nursery:
            url = await nursery.start(
                functools.partial(service.serve, config, port=0, shutdown=shutdown)
            )
            assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
            try:
                yield url
            finally:
                shutdown.set()


async def agent_health(url: str) -> dict[str, object]:
    reply = await request(url, "GET", "/health")
    assert reply.status == 200
    agent = reply.body["agent"]
    assert isinstance(agent, dict)
    return agent


async def wait_for_agent(url: str, **expected: object) -> None:
    """Poll /health until the agent's numbers include ``expected`` (bounded)."""
    with trio.fail_after(WAIT):
        while True:
            agent = await agent_health(url)
            if all(agent[key] == value for key, value in expected.items()):
                return
            await trio.sleep(0.01)


async def test_answers_200_and_rejects_bad_requests() -> None:
    async with running_service(ServiceConfig(agent_latency=0.0)) as url:
        reply = await ask(url, question="what is an actor?")
        assert reply.status == 200
        assert reply.body == {
            "answer": "You asked 'what is an actor?'; this is answer 1 of this incarnation."
        }
        assert reply.headers["content-type"] == "application/json"
        assert (await agent_health(url))["processed"] == 1

        assert (await ask(url, question="")).status == 400
        assert (await ask(url, question="x", think=-1)).status == 400
        not_json = await trio.to_thread.run_sync(_request, url, "POST", "/ask", b"{nope")
        assert not_json.status == 400 and "not JSON" in str(not_json.body["error"])
        assert (await request(url, "GET", "/nope")).status == 404
        wrong_method = await request(url, "GET", "/ask")
        assert (wrong_method.status, wrong_method.headers["allow"]) == (405, "POST")


async def test_handler_error_answers_500_is_logged_and_the_agent_recovers(
    log_records: list[dict[str, object]],
) -> None:
    async with running_service(ServiceConfig(agent_latency=0.0)) as url:
        reply = await ask(url, question="oops", fail=True)
        assert reply.status == 500
        assert reply.body == {"error": "the agent failed; see the service log"}
        # The endpoint's line ties the request to the error; the supervisor logged the crash.
        messages = [str(record["message"]) for record in log_records]
        assert any(
            m.startswith("POST /ask: the agent failed with AgentToolFailed(") for m in messages
        )
        assert any("child /service/agent crashed: AgentToolFailed(" in m for m in messages)
        # Restarted by its supervisor: the next question is answered.
        assert (await ask(url, question="again")).status == 200
        health = await agent_health(url)
        assert (health["restarts"], health["failures"]) == (1, 1)


async def test_full_mailbox_answers_503_and_slow_agent_504() -> None:
    config = ServiceConfig(
        ask_timeout=0.5,
        mailbox_capacity=1,
        retry_after=7,
        agent_latency=0.0,
        agent_shutdown_timeout=0.1,
    )
    async with running_service(config) as url:
        replies: dict[str, Reply] = {}

        async def ask_into(key: str, **payload: object) -> None:
            replies[key] = await ask(url, **payload)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(functools.partial(ask_into, "first", question="a", think=5))
            await wait_for_agent(url, state="processing", queued=0)
            nursery.start_soon(functools.partial(ask_into, "second", question="b", think=5))
            await wait_for_agent(url, queued=1)  # the mailbox is full now
            overflow = await ask(url, question="c")
            assert overflow.status == 503
            assert overflow.headers["retry-after"] == "7"
            assert overflow.body == {"error": "the agent is busy; retry later"}
        for key in ("first", "second"):
            assert replies[key].status == 504
            assert replies[key].body == {"error": "the agent did not answer within 0.5 s"}


def test_service_program_serves_until_sigint() -> None:
    root = Path(__file__).parents[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "examples.service", "--port", "0"],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + WAIT
        url = None
        while url is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
            url = found.group(1) if found else None
        assert url is not None, "the service never said where it listens"
        reply = _request(url, "GET", "/health", None)
        assert reply.status == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(WAIT) == 0
        assert "service stopped" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[1]", "send a JSON object"),
        (b'{"question": 3}', '"question" must be a non-empty string'),
        (b'{"question": "x", "think": true}', '"think" must be a number'),
        (b'{"question": "x", "think": 31}', "from 0 to 30"),
        (b'{"question": "x", "fail": "yes"}', '"fail" must be true or false'),
    ],
)
def test_parse_question_explains_bad_bodies(body: bytes, message: str) -> None:
    with pytest.raises(service.BadRequest, match=re.escape(message)):
        service.parse_question(body, max_think=30)
