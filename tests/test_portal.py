"""A portal that lasts: ``start_in_thread`` returns a portal usable without ``with``, closed
by ``close()`` or, if never closed, at interpreter exit with its tree stopped gracefully."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import triactor
from examples.counter import Add, Total, tree

ROOT = Path(__file__).parents[1]


def test_a_portal_without_with_works_until_closed() -> None:
    portal = triactor.start_in_thread(tree())
    try:
        portal.tell("counter", Add(3))
        assert portal.ask("counter", Total(), timeout=5) == 3
    finally:
        result = portal.close()
    assert result.clean and result.stopped_by == "portal closed"
    assert portal.close() == result  # closing again returns the same
    assert "stopped" in repr(portal)


def test_a_portal_still_works_as_a_context_manager() -> None:
    with triactor.start_in_thread(tree()) as portal:
        portal.tell("counter", Add(1))
        assert portal.ask("counter", Total(), timeout=5) == 1
    assert "stopped" in repr(portal)


APP = """
import logging
import attrs, triactor
from triactor import Actor, ChildSpec, Supervisor, handler

@attrs.frozen
class Work:
    n: int

class Worker(Actor):
    def __init__(self) -> None:
        self.done = 0

    @handler
    async def work(self, msg: Work) -> None:
        self.done += 1

    async def on_stop(self) -> None:
        print(f"worker stopped after {self.done} messages", flush=True)

logging.basicConfig(level=logging.INFO)  # triactor logs through the standard logging

# What a Flask or Django app does: a portal made at import, never closed by the app.
portal = triactor.start_in_thread(Supervisor("app", [ChildSpec(Worker, name="worker")]))
for n in range(5):
    portal.tell("worker", Work(n))
print("main done", flush=True)
"""


def test_a_portal_never_closed_is_closed_gracefully_at_exit(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent(APP))
    done = subprocess.run(
        [sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    # The queued messages were drained and on_stop ran: a graceful stop, after main ended.
    assert done.stdout.splitlines() == ["main done", "worker stopped after 5 messages"]
    assert "stopping the portal's tree 'app'" in done.stderr
