"""The scale-out example runs with one command, and every document reaches each stage once."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from examples import scale_out

ROOT = Path(__file__).parents[1]


async def test_both_versions_of_the_stage_score_every_document() -> None:
    reports = await scale_out.compare(docs=12, cost_ms=0.5)
    assert [sum(r.per_scorer) for r in reports] == [12, 12]
    assert len(reports[0].per_scorer) == 1
    assert len(reports[1].per_scorer) == scale_out.CORES


def test_scale_out_program_prints_the_comparison() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "examples.scale_out", "--docs", "10", "--cost-ms", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Scoring stage: 10 documents of ~1 ms CPU each" in out
    assert "1 core: plain def handler (a thread)" in out
    assert "CPU path: router of" in out and "speedup:" in out
    counts = [
        sum(int(n) for n in found.split(","))
        for found in re.findall(r"per scorer \[([\d, ]+)\]", out)
    ]
    assert counts == [10, 10]
    assert "dead letter" not in done.stderr
