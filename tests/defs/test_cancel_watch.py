"""A cancelled run stops even when the interrupt Dagster sends it is lost (cancel_watch.py)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

JOB = Path(__file__).with_name("cancel_watch_job.py")
REPO = Path(__file__).resolve().parents[2]


def wait_for_file(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.05)


def job_command(tmp_path: Path, scenario: str) -> tuple[Path, Path, list[str], dict]:
    """An instance directory, a directory for the job's marks, and the job's command line."""
    home, marks = tmp_path / "home", tmp_path / "marks"
    home.mkdir()
    marks.mkdir()
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    return home, marks, [sys.executable, str(JOB), str(marks), scenario], env


def test_a_cancelled_run_stops_though_its_first_interrupt_is_lost(tmp_path):
    home, marks, command, env = job_command(tmp_path, "lost_interrupt")
    proc = subprocess.Popen(
        command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for_file(marks / "finalizing", proc)
        with dg.DagsterInstance.from_config(str(home)) as instance:
            run = instance.get_run_by_id((marks / "run_id").read_text())
            # What Dagster's run launcher does to terminate a run: mark it, interrupt it once.
            instance.report_run_canceling(run)
            proc.send_signal(signal.SIGINT)
            cancelled_at = time.monotonic()
            try:
                _, stderr = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                pytest.fail("the cancelled run's step was still running 60 s after the cancel")
            stopped_after = time.monotonic() - cancelled_at
            events = [
                e.dagster_event_type for e in instance.all_logs(run.run_id) if e.is_dagster_event
            ]
    finally:
        proc.kill()
    # The interrupt landed in the finalizer, where Python drops it...
    assert "Exception ignored" in stderr and "DagsterExecutionInterruptedError" in stderr
    # ...and the step was stopped anyway, long before its end.
    assert not (marks / "finished").exists()
    assert stopped_after < 30, stopped_after
    assert dg.DagsterEventType.STEP_SUCCESS not in events
    assert dg.DagsterEventType.STEP_FAILURE in events


def test_the_watcher_never_interrupts_outside_a_step(tmp_path):
    # A step cancels its own run and ends while the watcher is about to resend; the run's
    # teardown (3 s, three resend intervals) must then run to its end, uninterrupted.
    _, marks, command, env = job_command(tmp_path, "teardown")
    result = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (marks / "torn_down").exists(), result.stderr
    assert "Interrupt" not in result.stderr
