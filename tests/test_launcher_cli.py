"""The ``triactor`` command, run as a subprocess: exit codes, signals, reports, bad targets.

These tests use real time, so each waits for a line of the child's output before acting
(never sleep-and-hope) and every wait is bounded.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

TESTS_DIR = Path(__file__).parent
WAIT = 15.0  # seconds: the bound on any single wait for the child


def triactor_command() -> list[str]:
    """The installed ``triactor`` console script (``python -m triactor.launcher`` if absent)."""
    script = Path(sys.executable).with_name("triactor")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "triactor.launcher"]


class Child:
    """A ``triactor`` subprocess whose output lines are read as they come."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [*triactor_command(), *args],
            cwd=TESTS_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._lines: queue.Queue[str] = queue.Queue()
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.stdout), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: IO[str] | None, into: list[str]) -> None:
        assert stream is not None
        for line in stream:
            into.append(line)
            self._lines.put(line)

    def output(self) -> str:
        return "".join(self.stdout) + "".join(self.stderr)

    def wait_for(self, text: str, timeout: float = WAIT) -> None:
        """Return once a line of output contains ``text``; fail after ``timeout`` seconds."""
        if any(text in line for line in self.stdout + self.stderr):
            return
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                if text in self._lines.get(timeout=left):
                    return
            except queue.Empty:
                break
        pytest.fail(f"no line with {text!r} within {timeout} s; output:\n{self.output()}")

    def send(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def finish(self, timeout: float = WAIT) -> int:
        """Wait for the exit (at most ``timeout`` s) and for all output; return the exit code."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"triactor did not exit within {timeout} s; output:\n{self.output()}")
        for reader in self._readers:
            reader.join(WAIT)
        return code


@pytest.fixture
def launch() -> Iterator[type[Child]]:
    """Start ``triactor`` subprocesses; any still running at the end of the test is killed."""
    children: list[Child] = []

    class Tracked(Child):
        def __init__(self, *args: str) -> None:
            super().__init__(*args)
            children.append(self)

    yield Tracked
    for child in children:
        if child.proc.poll() is None:
            child.proc.kill()
            child.proc.wait()


def run_to_end(*args: str) -> tuple[int, str, str]:
    """Run ``triactor`` to its end; return the exit code, stdout and stderr."""
    done = subprocess.run(
        [*triactor_command(), *args],
        cwd=TESTS_DIR,
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    return done.returncode, done.stdout, done.stderr


def test_console_script_is_installed() -> None:
    assert Path(sys.executable).with_name("triactor").exists(), (
        "the `triactor` command is missing: reinstall with pip install -e '.[dev]'"
    )


def test_a_run_that_ends_by_itself_exits_0() -> None:
    code, out, err = run_to_end("run", "launcher_fixtures.apps:finite_tree")
    assert code == 0, err
    assert out == "work done\n"
    assert "tree /app started: 2 actors running" in err
    assert "Traceback" not in err


def test_an_async_factory_is_awaited() -> None:
    code, out, err = run_to_end("run", "launcher_fixtures.apps:async_finite_tree")
    assert (code, out) == (0, "work done\n"), err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_the_tree_gracefully_and_exits_0(
    launch: type[Child], signum: signal.Signals
) -> None:
    child = launch("run", "launcher_fixtures.apps:tree", "--shutdown-timeout", "5")
    child.wait_for("tree /app started")
    signalled = time.monotonic()
    child.send(signum)
    assert child.finish() == 0, child.output()
    assert time.monotonic() - signalled < 5.0
    err = "".join(child.stderr)
    assert f"{signum.name}: stopping /app gracefully within 5 s" in err
    assert "tree stopped gracefully in" in err
    assert any(line.startswith("worker stopped: processed") for line in child.stdout)


def test_a_second_signal_cancels_at_once(launch: type[Child]) -> None:
    # The hanger ignores the stop request; its shutdown_timeout (60 s) would hold the stop.
    child = launch("run", "launcher_fixtures.failing:hangs", "--shutdown-timeout", "60")
    child.wait_for("tree /app started")
    child.send(signal.SIGINT)
    child.wait_for("stopping /app gracefully")
    signalled = time.monotonic()
    child.send(signal.SIGINT)
    assert child.finish() == 130, child.output()
    assert time.monotonic() - signalled < 5.0
    assert "hanger on_stop ran\n" in child.stdout
    err = "".join(child.stderr)
    assert "SIGINT: cancelling every actor now" in err
    assert "the shutdown was cut short (SIGINT); exiting with code 130" in err


def test_the_shutdown_deadline_cancels_what_is_left(launch: type[Child]) -> None:
    child = launch("run", "launcher_fixtures.failing:hangs", "--shutdown-timeout", "0.5")
    child.wait_for("tree /app started")
    signalled = time.monotonic()
    child.send(signal.SIGTERM)
    assert child.finish() == 3, child.output()
    assert 0.5 <= time.monotonic() - signalled < 5.0
    err = "".join(child.stderr)
    assert "did not finish within 0.5 s" in err
    assert "exiting with code 3" in err
    assert "hanger on_stop ran\n" in child.stdout


def test_an_actor_cancelled_at_its_own_deadline_exits_3(launch: type[Child]) -> None:
    child = launch("run", "launcher_fixtures.failing:hangs_briefly")
    child.wait_for("tree /app started")
    child.send(signal.SIGTERM)
    assert child.finish() == 3, child.output()
    err = "".join(child.stderr)
    assert "tree stopped gracefully" not in err
    assert (
        "the shutdown dropped 0 queued messages and cancelled 1 actors; exiting with code 3" in err
    )


def test_a_crash_while_draining_is_logged_and_the_drain_goes_on(launch: type[Child]) -> None:
    child = launch("run", "launcher_fixtures.failing:crashes_while_draining")
    child.wait_for("tree /app started")
    child.send(signal.SIGINT)
    assert child.finish() == 0, child.output()
    done = {line for line in child.stdout if line.startswith("job ")}
    assert done == {f"job {n} done\n" for n in range(20) if n != 5}
    err = "".join(child.stderr)
    [crash] = [line for line in child.stderr if "child /app/fragile crashed" in line]
    assert " ERROR " in crash and "ValueError('job 5 is malformed')" in crash
    assert "Traceback" in err and "tree stopped gracefully" in err


def test_a_signal_during_startup_cancels_the_start(launch: type[Child]) -> None:
    child = launch("run", "launcher_fixtures.apps:slow_start")
    child.wait_for("starting slowly")
    child.send(signal.SIGINT)
    assert child.finish() == 130, child.output()
    assert "SIGINT: cancelling the tree while it starts" in "".join(child.stderr)


def test_a_root_that_gives_up_exits_1_with_the_report() -> None:
    code, _, err = run_to_end("run", "launcher_fixtures.failing:gives_up")
    assert code == 1
    report = err[err.index("triactor: the root supervisor gave up; exiting with code 1.") :]
    assert "Supervisor /root gave up." in report
    assert "child:     /root/crasher" in report
    assert "restarts:  3 within 60 s (max_restarts=2)" in report
    assert "RuntimeError: the crasher exploded" in report
    assert "What to do:" in report


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("launcher_fixtures.nope:tree", "no module named 'launcher_fixtures.nope'"),
        ("launcher_fixtures.apps:nope", "'launcher_fixtures.apps' has no attribute 'nope'"),
        ("launcher_fixtures.apps:NOT_A_TREE", "is an int, not a Supervisor or a function"),
        ("launcher_fixtures.apps:returns_a_dict", "returned a dict; it must return a"),
        ("launcher_fixtures.apps", "expected a target of the form module:attr"),
    ],
)
def test_a_bad_target_exits_2_with_one_clear_line(target: str, message: str) -> None:
    code, out, err = run_to_end("run", target)
    assert code == 2
    assert out == ""
    assert err.startswith("triactor: error: ") and err.count("\n") == 1, err
    assert message in err


def test_a_module_that_fails_to_import_shows_its_own_traceback() -> None:
    code, _, err = run_to_end("run", "launcher_fixtures.broken:tree")
    assert code == 1
    lines = err.splitlines()
    assert lines[0] == (
        "triactor: error: importing module 'launcher_fixtures.broken' failed: "
        "No module named 'triactor_fixture_dependency_that_is_not_installed'"
    )
    assert lines[1] == "Traceback (most recent call last):"
    assert "launcher_fixtures/broken.py" in lines[2]  # the user's frame comes first
    assert "importlib" not in err and "triactor/launcher" not in err


def test_bad_options_exit_2() -> None:
    code, _, err = run_to_end("run", "launcher_fixtures.apps:tree", "--shutdown-timeout", "-1")
    assert code == 2
    assert "must be >= 0 seconds" in err


def test_json_log_lines() -> None:
    code, _, err = run_to_end(
        "run", "launcher_fixtures.apps:finite_tree", "--json", "--log-level", "debug"
    )
    assert code == 0
    records = [json.loads(line) for line in err.splitlines()]
    started = [r for r in records if r["record"]["message"].startswith("tree /app started")]
    assert started and started[0]["record"]["level"]["name"] == "INFO"


def test_log_level_hides_less_severe_lines() -> None:
    code, out, err = run_to_end(
        "run", "launcher_fixtures.apps:finite_tree", "--log-level", "WARNING"
    )
    assert (code, out, err) == (0, "work done\n", "")


def test_no_status_line_when_not_a_terminal() -> None:
    code, _, err = run_to_end("run", "launcher_fixtures.apps:finite_tree")
    assert code == 0
    assert "\r" not in err and "\x1b" not in err


def test_tree_draws_without_running() -> None:
    code, out, err = run_to_end("tree", "launcher_fixtures.failing:gives_up")
    assert (code, err) == (0, "")
    assert out == (
        "root  (supervisor one_for_one, max 2 restarts in 60 s)\n"
        "└── crasher  Crasher (permanent, shutdown 5 s, mailbox 1000 block)\n"
    )


def test_tree_with_a_bad_target_exits_2() -> None:
    code, _, err = run_to_end("tree", "launcher_fixtures.apps:needs_arguments")
    assert code == 2
    assert "takes required arguments (size)" in err


# -- diagnostics through the launcher ------------------------------------------------------------


def test_status_prints_every_actor_of_a_running_tree(launch: type[Child]) -> None:
    child = launch("run", "launcher_fixtures.apps:tree", "--status", "off")
    child.wait_for("tree /app started")
    code, out, err = run_to_end("status", str(child.proc.pid))
    assert code == 0, err
    assert f"triactor pid {child.proc.pid}: 2 actors" in out
    assert "app [idle]" in out
    assert "worker [processing] handling Job for" in out
    assert "mailbox 19" in out
    child.send(signal.SIGTERM)
    assert child.finish() == 0
    assert "triactor pid" not in "".join(child.stderr)  # asked through its socket, not SIGUSR1


def test_status_of_a_missing_process_exits_2() -> None:
    code, _, err = run_to_end("status", "999999999")
    assert code == 2
    assert "no process 999999999" in err


def test_blocking_calls_are_reported_with_their_line() -> None:
    code, _, err = run_to_end("run", "launcher_fixtures.apps:blocking_tree", "--status", "off")
    assert code == 0, err
    assert "actor /app/dozer handling Finish blocked the Trio loop" in err
    assert "apps.py" in err and "in finish" in err


def test_blocking_detector_can_be_turned_off() -> None:
    code, _, err = run_to_end(
        "run",
        "launcher_fixtures.apps:blocking_tree",
        "--status",
        "off",
        "--blocking-threshold",
        "0",
    )
    assert code == 0, err
    assert "blocked the Trio loop" not in err


def test_metrics_port_serves_prometheus_text(launch: type[Child]) -> None:
    child = launch("run", "launcher_fixtures.apps:tree", "--status", "off", "--metrics-port", "0")
    child.wait_for("tree /app started")
    [line] = [line for line in child.stderr if "metrics at http://" in line]
    url = line.split("metrics at ", 1)[1].split()[0]
    with urllib.request.urlopen(url, timeout=WAIT) as response:
        body = response.read().decode()
    assert 'triactor_mailbox_depth{actor="/app/worker"} 19' in body
    child.send(signal.SIGTERM)
    assert child.finish() == 0


# -- logs and terminal output --------------------------------------------------------------------

SECRET = "sk-live-123456"  # launcher_fixtures.secrets.SECRET
TIMESTAMP = re.compile(
    r"^\d\d:\d\d:\d\d\.\d\d\d (TRACE|DEBUG|INFO|SUCCESS|WARNING|ERROR|CRITICAL) "
)


def log_records_of(err: str) -> list[str]:
    """The text log records in ``err``: each starts with a timestamp line."""
    records: list[list[str]] = []
    for line in err.splitlines():
        if TIMESTAMP.match(line):
            records.append([line])
        elif records and line and not line.startswith("triactor: "):
            records[-1].append(line)
        else:
            break  # the report after the logs
    return ["\n".join(record) for record in records]


@pytest.mark.parametrize("options", [(), ("--json",)], ids=["text", "json"])
def test_no_secret_in_any_output_by_default(options: tuple[str, ...]) -> None:
    code, out, err = run_to_end(
        "run", "launcher_fixtures.secrets:shop", "--log-level", "DEBUG", *options
    )
    assert code == 1
    assert "dead letter: Refund for /shop/payments (no handler)" in err
    assert "dead letter: Charge for /shop/payments (actor crashed while handling it)" in err
    assert "card declined" in err and "gave up" in err
    assert SECRET not in out + err


def test_message_contents_are_an_opt_in() -> None:
    _, _, err = run_to_end("run", "launcher_fixtures.secrets:shop", "--message-contents")
    assert f"dead letter: Refund(card_token='{SECRET}') for /shop/payments" in err


def test_no_secret_in_status_snapshots(launch: type[Child]) -> None:
    child = launch("run", "launcher_fixtures.secrets:vault", "--status", "off")
    child.wait_for("tree /bank started")
    code, out, err = run_to_end("status", str(child.proc.pid))
    assert code == 0, err
    assert "vault [processing] handling Deposit" in out
    child.send(signal.SIGUSR1)
    child.wait_for("triactor pid")
    child.send(signal.SIGTERM)
    assert child.finish() == 0
    assert "vault [processing] handling Deposit" in child.output()
    assert SECRET not in out + child.output()


def test_a_crash_is_one_compact_record_and_verbose_shows_it_all() -> None:
    _, _, err = run_to_end("run", "launcher_fixtures.secrets:shop")
    [crash] = [r for r in log_records_of(err) if "crashed:" in r]
    assert len(crash.splitlines()) < 25, crash
    assert "in charge" in crash and "_cell.py" not in crash
    assert crash.splitlines()[-1] == "raised in actor '/shop/payments' while handling Charge"
    _, _, err = run_to_end("run", "launcher_fixtures.secrets:shop", "--verbose")
    [crash] = [r for r in log_records_of(err) if "crashed:" in r]
    assert "_cell.py" in crash


def test_a_repeated_constructor_failure_is_reported_once_with_a_count() -> None:
    code, _, err = run_to_end("run", "launcher_fixtures.secrets:typo")
    assert code == 1
    records = log_records_of(err)
    assert sum("failed to start" in r for r in records) == 2  # the first, then the count
    assert "failed to start 4 times in a row this same way" in records[-1]
    assert "Traceback" not in records[-1]
    assert "During handling" not in err and "[the same exception" not in err
    assert err.count("unexpected keyword argument 'rte'\n") == 2  # the log and the report
    assert len(err.splitlines()) < 40


def test_status_of_a_process_that_is_not_triactor_leaves_it_alone() -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        code, out, err = run_to_end("status", str(sleeper.pid))
        assert code == 2
        assert out == ""
        assert err.count("\n") == 1 and f"process {sleeper.pid} runs no triactor tree" in err
        assert sleeper.poll() is None  # still running: nothing was sent to it
    finally:
        sleeper.kill()
        sleeper.wait()


def test_json_output_is_json_lines_through_a_sigusr1_snapshot(launch: type[Child]) -> None:
    child = launch("run", "launcher_fixtures.secrets:vault", "--json")
    child.wait_for("tree /bank started")
    child.send(signal.SIGUSR1)
    child.wait_for('"status"')
    child.send(signal.SIGTERM)
    assert child.finish() == 0
    lines = [json.loads(line) for line in child.stderr]  # every line parses
    [report] = [line for line in lines if "status" in line]
    assert report["text"].startswith(f"triactor pid {child.proc.pid}: 2 actors")
    [vault] = [s for s in report["status"]["snapshot"] if s["path"] == "/bank/vault"]
    assert vault["current_message_type"] == "Deposit"
    assert all("text" in line for line in lines)


@pytest.mark.parametrize(
    ("target", "code"),
    [("launcher_fixtures.nope:tree", 2), ("launcher_fixtures.broken:tree", 1)],
)
def test_json_errors_are_json_lines_too(target: str, code: int) -> None:
    exit_code, _, err = run_to_end("run", target, "--json")
    assert exit_code == code
    [record] = [json.loads(line) for line in err.splitlines()]
    assert record["record"]["level"]["name"] == "CRITICAL"
    assert "launcher_fixtures" in record["text"]


def test_json_and_a_status_line_exclude_each_other() -> None:
    code, _, err = run_to_end("run", "launcher_fixtures.apps:tree", "--json", "--status", "on")
    assert code == 2
    assert err.count("\n") == 1 and "--status on cannot be used with --json" in err


def test_the_status_line_never_runs_into_log_lines_or_snapshots(tmp_path: Path) -> None:
    # Raw bytes: a text-mode pipe would turn each "\r" into a line break.
    stderr_path = tmp_path / "stderr"

    def wait_for(text: bytes) -> None:
        deadline = time.monotonic() + WAIT
        while text not in stderr_path.read_bytes():
            assert time.monotonic() < deadline, f"no {text!r} in {stderr_path.read_bytes()!r}"
            time.sleep(0.02)

    with stderr_path.open("wb") as stderr:
        proc = subprocess.Popen(
            [*triactor_command(), "run", "launcher_fixtures.secrets:vault", "--status", "on"],
            cwd=TESTS_DIR,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        wait_for(b"tree /bank started")
        wait_for(b"running 0:00:0")  # the status line is drawn
        proc.send_signal(signal.SIGUSR1)
        wait_for(b"triactor pid")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(WAIT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    raw = stderr_path.read_bytes().decode()
    # What a terminal shows of each line: the text after the last erase.
    shown = [line.rsplit("\r\x1b[K", 1)[-1] for line in raw.split("\n")]
    assert any(line.startswith("triactor pid") for line in shown), raw
    for line in shown:
        if "triactor pid" in line:
            assert line.startswith("triactor pid"), repr(line)
        if " INFO " in line:
            assert TIMESTAMP.match(line), repr(line)


@pytest.mark.parametrize("port", ["99999", "-1", "http"])
def test_a_bad_port_is_a_one_line_error(port: str) -> None:
    code, out, err = run_to_end("run", "launcher_fixtures.apps:tree", "--metrics-port", port)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1, err
    assert f"argument --metrics-port: expected a TCP port from 0 to 65535, got {port!r}" in err


def test_a_port_in_use_is_a_one_line_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out, err = run_to_end(
            "run", "launcher_fixtures.apps:tree", "--metrics-port", str(port)
        )
    assert (code, out) == (2, "")
    assert err.count("\n") == 1, err
    assert err.startswith(f"triactor: error: cannot serve metrics on 127.0.0.1:{port}: ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("run", "launcher_fixtures.apps:tree", "--shutdown-timeout", "soon"), "expected a number"),
        (("run", "launcher_fixtures.apps:tree", "--blocking-threshold", "inf"), "finite"),
        (("run", "launcher_fixtures.apps:tree", "--blocking-threshold", "nan"), ">= 0 seconds"),
        (("status", "1", "--timeout", "0"), "more than 0 seconds"),
        (("status", "-5"), "expected a process id"),
        (("run", "launcher_fixtures.apps:tree", "--log-level", "LOUD"), "invalid choice"),
    ],
)
def test_bad_options_are_one_line_errors(args: tuple[str, ...], message: str) -> None:
    code, out, err = run_to_end(*args)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1, err
    assert message in err
