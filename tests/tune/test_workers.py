"""Studies across processes: a killed or interrupted worker, and several workers on one storage."""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from optuna.trial import TrialState

from tests.tune.conftest import counted, run_cli, start_cli, trials_of

STUDY = "MLP-digits"  # the default name for the tiny model on digits


def wait_for(condition: Callable[[], bool], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def mid_study(storage: str) -> Callable[[], bool]:
    """True once two trials are counted and another is running past its first epoch."""
    def check() -> bool:
        try:
            trials = trials_of(storage, STUDY)
        except Exception:  # the worker has not created the study yet
            return False
        running = [t for t in trials if t.state == TrialState.RUNNING and t.intermediate_values]
        return len(counted(trials)) >= 2 and bool(running)
    return check


def interrupt_and_resume(tmp_path: Path, stop: signal.Signals) -> tuple[int, list, list]:
    """Stop a worker mid-trial with ``stop``, run the same command again; what each saw."""
    args = ("--trials", "4", "--epochs", "20", "--pruner", "none", "--heartbeat", "1",
            "--output", str(tmp_path))
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    worker = start_cli(*args)
    wait_for(mid_study(storage))
    worker.send_signal(stop)
    _, stderr = worker.communicate(timeout=60)
    before = trials_of(storage, STUDY)

    rerun = run_cli(*args)
    assert rerun.returncode == 0, rerun.stderr
    return worker.returncode, before, trials_of(storage, STUDY), stderr


def assert_resumed(before: list, after: list, tmp_path: Path) -> None:
    interrupted = [t.number for t in before if t.state in (TrialState.RUNNING, TrialState.FAIL)]
    assert len(interrupted) == 1
    assert len(counted(after)) == 4  # the total, reached once, nothing counted twice
    assert not [t for t in after if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    kept = {t.number: t.value for t in counted(before)}
    assert {t.number: t.value for t in after if t.number in kept} == kept
    document = json.loads((tmp_path / "results.json").read_text())
    failed = [t for t in document["trials"] if t["state"] == "FAIL"]
    assert [t["number"] for t in failed] == interrupted
    assert failed[0]["reason"].startswith("interrupted")


def test_killed_worker_resumes_with_its_trial_failed_and_finished_ones_kept(tmp_path):
    returncode, before, after, _ = interrupt_and_resume(tmp_path, signal.SIGKILL)
    assert returncode == -signal.SIGKILL
    assert_resumed(before, after, tmp_path)


def test_ctrl_c_stops_cleanly_and_says_how_to_resume(tmp_path):
    returncode, before, after, stderr = interrupt_and_resume(tmp_path, signal.SIGINT)
    assert returncode == 130
    assert "Run the same command again" in stderr
    assert "Traceback" not in stderr
    assert_resumed(before, after, tmp_path)


def run_two_workers(storage: str, tmp_path: Path) -> list:
    args = ("--trials", "8", "--epochs", "10", "--heartbeat", "1", "--storage", storage)
    workers = [start_cli(*args, "--output", str(tmp_path / f"w{i}")) for i in range(2)]
    for worker in workers:
        _, stderr = worker.communicate(timeout=120)
        assert worker.returncode == 0, stderr
    return trials_of(storage, STUDY)


def assert_shared(trials: list) -> None:
    assert len(counted(trials)) == 8
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert len({t.user_attrs["worker"] for t in counted(trials)}) == 2  # both did work


def test_two_workers_share_one_sqlite_study(tmp_path):
    assert_shared(run_two_workers(f"sqlite:///{tmp_path / 'shared.db'}", tmp_path))


def _postgres_bin() -> Path | None:
    found = shutil.which("pg_ctl") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))), None)
    return Path(found).resolve().parent if found else None


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A throw-away PostgreSQL server on a unix socket (run as `postgres` when we are root)."""
    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries (pg_ctl) on PATH or in /usr/lib/postgresql")
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    home = Path(tempfile.mkdtemp(prefix="bnpg-"))
    if as_postgres:
        shutil.chown(home, "postgres")
    run = lambda *cmd: subprocess.run([*as_postgres, *cmd], check=True, capture_output=True)  # noqa: E731
    run(str(bindir / "initdb"), "-D", str(home / "data"), "-U", "postgres", "--auth=trust")
    run(str(bindir / "pg_ctl"), "-D", str(home / "data"), "-l", str(home / "log"), "-w",
        "-o", f"-k {home} -c listen_addresses=''", "start")
    try:
        yield f"postgresql://postgres@/postgres?host={home}"
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(home / "data"), "-m", "immediate", "stop")
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.postgres
def test_two_workers_share_one_postgresql_study(tmp_path, postgres_url):
    assert_shared(run_two_workers(postgres_url, tmp_path))
