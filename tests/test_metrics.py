"""Prometheus metrics: the text rendering and the HTTP endpoint on loopback."""

from __future__ import annotations

import attrs
import trio
import trio.testing

from triactor import Actor, Overflow, PriorityPool, handler, open_actor_system
from triactor.diagnostics import render_metrics, serve_metrics


@attrs.frozen
class Job:
    fail: bool = False


class Worker(Actor):
    mailbox_capacity = 2
    overflow = Overflow.DROP_NEWEST

    @handler
    async def job(self, msg: Job) -> None:
        await trio.sleep(1)


async def _http_get(port: int, path: str) -> str:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        chunks = []
        while chunk := await stream.receive_some(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


async def test_render_metrics_covers_actors_dead_letters_and_pool_histograms(
    autojump_clock: trio.testing.MockClock,
) -> None:
    pool = PriorityPool(1, classes={"high": 0.0, "low": 0.5})
    async with open_actor_system() as system:
        worker = await system.spawn(Worker, name="w")
        await worker.tell(Job())
        await trio.testing.wait_all_tasks_blocked()  # the worker is busy with it
        for _ in range(3):  # two queued, one dropped
            await worker.tell(Job())
        async with pool.acquire(priority="high"):
            pass
        async with trio.open_nursery() as nursery, pool.acquire(priority="high"):
            nursery.start_soon(_hold_low, pool)
            await trio.sleep(0.02)
        text = render_metrics(system, {"api": pool})
    assert 'triactor_mailbox_depth{actor="/w"} 2' in text
    assert 'triactor_mailbox_high_water{actor="/w"} 2' in text
    assert 'triactor_dead_letters_total{reason="dropped_newest"} 1' in text
    assert "triactor_actors 1" in text
    assert "# TYPE triactor_pool_wait_seconds histogram" in text
    assert 'triactor_pool_wait_seconds_count{pool="api",class="high"} 2' in text
    assert 'triactor_pool_wait_seconds_bucket{pool="api",class="low",le="0.01"} 0' in text
    assert 'triactor_pool_wait_seconds_bucket{pool="api",class="low",le="0.05"} 1' in text
    assert 'triactor_pool_wait_seconds_bucket{pool="api",class="low",le="+Inf"} 1' in text


async def _hold_low(pool: PriorityPool) -> None:
    async with pool.acquire(priority="low"):
        pass


async def test_metrics_endpoint_serves_the_text_format() -> None:
    async with open_actor_system() as system:
        await system.spawn(Worker, name="w")
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_metrics, system, 0)
            response = await _http_get(port, "/metrics")
            missing = await _http_get(port, "/nope")
            nursery.cancel_scope.cancel()
    assert response.startswith("HTTP/1.1 200 OK")
    assert "text/plain; version=0.0.4" in response
    assert 'triactor_messages_processed_total{actor="/w"} 0' in response
    assert missing.startswith("HTTP/1.1 404")
