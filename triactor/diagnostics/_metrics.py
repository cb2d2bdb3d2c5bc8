"""Metrics for monitoring, in the Prometheus text format, and a tiny endpoint that serves them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

import trio

from .._logging import logger
from ._snapshot import ActorSnapshot

if TYPE_CHECKING:
    from ..actors import ActorSystem
    from ..pools import PriorityPool

__all__ = ["MetricsPortError", "render_metrics", "serve_metrics"]


class MetricsPortError(OSError):
    """:func:`serve_metrics` could not listen on its port (in use, or not allowed).

    The message names the address and the reason; ``errno`` is the system's error number.
    """


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _family(name: str, kind: str, help_text: str, samples: Iterable[str]) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *samples]


def render_metrics(system: ActorSystem, pools: Mapping[str, PriorityPool] | None = None) -> str:
    """Render the system's (and the given pools') metrics in the Prometheus text format.

    Per actor (label ``actor``: its path): mailbox depth and high-water mark, messages
    processed and failed, restarts. System-wide: live actors, dead letters by reason. Per pool
    and priority class (labels ``pool``, ``class``): a histogram of waits, and grants.
    """
    snapshots = system.snapshot()
    lines: list[str] = []
    per_actor: list[tuple[str, str, str, Callable[[ActorSnapshot], float]]] = [
        ("triactor_mailbox_depth", "gauge", "Messages queued now.", lambda s: s.mailbox_depth),
        (
            "triactor_mailbox_high_water",
            "gauge",
            "The deepest the mailbox has been.",
            lambda s: s.mailbox_high_water,
        ),
        (
            "triactor_messages_processed_total",
            "counter",
            "Messages handled successfully.",
            lambda s: s.processed,
        ),
        (
            "triactor_messages_failed_total",
            "counter",
            "Handler exceptions: crashes, and resume_on errors the actor went on after.",
            lambda s: s.failures,
        ),
        ("triactor_restarts_total", "counter", "Restarts by a supervisor.", lambda s: s.restarts),
    ]
    for name, kind, help_text, value in per_actor:
        lines += _family(
            name,
            kind,
            help_text,
            (f"{name}{_labels(actor=s.path)} {value(s):g}" for s in snapshots),
        )
    lines += _family(
        "triactor_actors", "gauge", "Live actors.", [f"triactor_actors {len(snapshots)}"]
    )
    by_reason = system.dead_letters.count_by_reason()
    lines += _family(
        "triactor_dead_letters_total",
        "counter",
        "Undeliverable messages, by reason.",
        (
            f"triactor_dead_letters_total{_labels(reason=reason.name.lower())} {count}"
            for reason, count in sorted(by_reason.items(), key=lambda item: item[0].name)
        ),
    )
    exports = system.cluster_statistics()
    for name, kind, help_text, field in (
        (
            "triactor_cluster_stream_length",
            "gauge",
            "Entries in an exported name's stream.",
            "length",
        ),
        (
            "triactor_cluster_pending",
            "gauge",
            "Entries delivered to a host and not yet acknowledged.",
            "pending",
        ),
        (
            "triactor_cluster_received_total",
            "counter",
            "Entries this node read from the stream.",
            "received",
        ),
        (
            "triactor_cluster_redelivered_total",
            "counter",
            "Entries this node took over from dead nodes.",
            "redelivered",
        ),
        ("triactor_cluster_hosts", "gauge", "Nodes hosting the name.", "hosts"),
    ):
        if exports:
            lines += _family(
                name,
                kind,
                help_text,
                (
                    f"{name}{_labels(name=e.name)} "
                    f"{len(e.hosts) if field == 'hosts' else getattr(e, field):g}"
                    for e in exports
                ),
            )
    for pool_name, pool in (pools or {}).items():
        lines += _pool_lines(pool_name, pool)
    return "\n".join(lines) + "\n"


def _pool_lines(pool_name: str, pool: PriorityPool) -> list[str]:
    lines = ["# HELP triactor_pool_wait_seconds Time from request to grant, by class."]
    lines.append("# TYPE triactor_pool_wait_seconds histogram")
    stats = pool.statistics()
    for class_name, histogram in pool._wait_histograms().items():
        labels = {"pool": pool_name, "class": class_name}
        for bound, count in histogram.buckets:
            lines.append(
                f"triactor_pool_wait_seconds_bucket{_labels(**labels, le=f'{bound:g}')} {count}"
            )
        lines.append(
            f"triactor_pool_wait_seconds_bucket{_labels(**labels, le='+Inf')} {histogram.count}"
        )
        lines.append(f"triactor_pool_wait_seconds_sum{_labels(**labels)} {histogram.total:g}")
        lines.append(f"triactor_pool_wait_seconds_count{_labels(**labels)} {histogram.count}")
    lines += _family(
        "triactor_pool_waiting",
        "gauge",
        "Requests waiting now, by class.",
        (
            f"triactor_pool_waiting{_labels(pool=pool_name, **{'class': name})} {c.waiting}"
            for name, c in stats.classes.items()
        ),
    )
    return lines


async def _respond(stream: trio.SocketStream, body: Callable[[], str]) -> None:
    request = b""
    with trio.move_on_after(5):
        while b"\r\n\r\n" not in request and len(request) < 65536:
            chunk = await stream.receive_some(4096)
            if not chunk:
                break
            request += chunk
    path = request.split(b" ", 2)[1] if request.count(b" ") >= 2 else b"/"
    if path.split(b"?")[0] not in (b"/", b"/metrics"):
        payload, status = b"not found: try /metrics\n", b"404 Not Found"
    else:
        payload, status = body().encode(), b"200 OK"
    head = (
        b"HTTP/1.1 " + status + b"\r\n"
        b"Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
        b"Content-Length: " + str(len(payload)).encode() + b"\r\n"
        b"Connection: close\r\n\r\n"
    )
    try:
        await stream.send_all(head + payload)
    except trio.BrokenResourceError:
        pass
    finally:
        await stream.aclose()


async def serve_metrics(
    system: ActorSystem,
    port: int,
    *,
    host: str = "127.0.0.1",
    pools: Mapping[str, PriorityPool] | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve :func:`render_metrics` over HTTP at ``/metrics`` until cancelled.

    Start it in a nursery with ``port = await nursery.start(serve_metrics, system, 9464)``;
    ``task_status`` reports the bound port (useful with ``port=0``). Binds to loopback by
    default; pass ``host="0.0.0.0"`` to expose it.

    Raises:
        MetricsPortError: (an ``OSError``) if the port cannot be bound.
        ValueError: if ``port`` is not a TCP port number (0 to 65535).
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"serve_metrics needs a TCP port number from 0 to 65535, got {port!r}")
    try:
        listeners = await trio.open_tcp_listeners(port, host=host)
    except OSError as exc:
        error = MetricsPortError(
            f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}; "
            "choose another port (0 picks a free one)"
        )
        error.errno = exc.errno
        raise error from exc
    bound = listeners[0].socket.getsockname()[1]
    logger.info("metrics at http://{}:{}/metrics", host, bound)

    async def handle(stream: trio.SocketStream) -> None:
        await _respond(stream, lambda: render_metrics(system, pools))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, handle, listeners)
        task_status.started(bound)
