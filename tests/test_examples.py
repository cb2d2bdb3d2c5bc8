"""The examples run: fan-out costs the max of the waits, the pipeline's report adds up, and
each ``python -m examples.NAME`` program runs to its end."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
import trio
import trio.testing

from examples import fanout, pipeline
from triactor.launcher import StatusLine

ROOT = Path(__file__).parents[1]


async def test_fanout_costs_the_max_not_the_sum(autojump_clock: trio.testing.MockClock) -> None:
    report = await fanout.run_fanout({"web": 0.6, "papers": 0.4, "wiki": 0.3}, "actors")
    assert report.sequential == pytest.approx(report.sum) == pytest.approx(1.3)
    assert report.parallel == pytest.approx(report.max) == pytest.approx(0.6)
    assert report.brief.sources == ("web", "papers", "wiki")
    assert len(report.brief.facts) == 3


async def test_pipeline_report_adds_up(autojump_clock: trio.testing.MockClock) -> None:
    items = 60
    report = await pipeline.run_pipeline(items, seed=1, progress=False)
    processed = report["processed"]
    assert isinstance(processed, dict)
    assert sum(processed.values()) + report["dead_letters"] == items  # type: ignore[operator]
    assert report["corrupt_dropped"] == report["dead_letters"]
    assert report["parser_restarts"] == report["dead_letters"]  # one crash per corrupt document
    assert report["parser_restarts"] > 0  # type: ignore[operator]


def run_example(name: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", f"examples.{name}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_fanout_program_prints_the_comparison() -> None:
    out = run_example("fanout", "--latency-a", "0.06", "--latency-b", "0.04", "--topic", "x")
    assert "sequential (ask one, then the next)" in out
    assert "sum of the waits 0.10 s" in out
    assert "max of the waits 0.06 s" in out
    assert "the pipeline costs the max of its waits, not the sum" in out


def test_pipeline_program_prints_its_report() -> None:
    out = run_example("pipeline", "--items", "30", "--quiet")
    assert "Pipeline report" in out
    assert "processed" in out and "dead letters" in out


@pytest.mark.redis
@pytest.mark.slow
def test_cluster_example_runs_the_pipeline_across_three_processes(redis_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "examples.cluster", "--items", "80", "--url", redis_url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = result.stdout
    assert "Pipeline across 3 processes" in report
    pids = {line.split("pid ")[1].split(",")[0] for line in report.splitlines() if "pid " in line}
    assert len(pids) == 3  # three processes did the work
    assert "fetched 80" in report


def test_pipeline_log_lines_are_written_above_its_progress_line() -> None:
    display = pipeline.Progress()
    terminal = io.StringIO()
    display.line = StatusLine(terminal, enabled=True)
    display.show("processed 1/10")
    display.write("12:00:00.000 ERROR   child /pipeline/parser crashed\n")
    assert terminal.getvalue() == (
        "\r\x1b[Kprocessed 1/10"  # the progress line
        "\r\x1b[K12:00:00.000 ERROR   child /pipeline/parser crashed\n"  # erased, the log line
        "processed 1/10"  # and the progress line again, below it
    )


def test_counter_program_shows_a_total_and_how_to_run_it() -> None:
    out = run_example("counter")
    assert "1 + 2 + 3 + 4 = 10" in out
    assert "triactor run examples.counter:tree" in out


def test_service_without_hypercorn_names_the_extra_to_install() -> None:
    blocked = "import sys; sys.modules['hypercorn'] = None; import examples.service"
    done = subprocess.run(
        [sys.executable, "-c", blocked], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert "pip install -e '.[examples]'" in done.stderr
    assert "Traceback" not in done.stderr
