"""Diagnostics: the blocking-call detector, actor snapshots, and metrics."""

from ._blocking import BlockingCallDetected, BlockingDetector, BlockingReport, detect_blocking
from ._metrics import MetricsPortError, render_metrics, serve_metrics
from ._snapshot import ActorSnapshot, format_snapshot

__all__ = [
    "ActorSnapshot",
    "BlockingCallDetected",
    "BlockingDetector",
    "BlockingReport",
    "MetricsPortError",
    "detect_blocking",
    "format_snapshot",
    "render_metrics",
    "serve_metrics",
]
