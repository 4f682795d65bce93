"""Studies across processes: a killed or interrupted worker, and several workers on one storage."""

from __future__ import annotations

import glob
import json
import os
import pwd
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
STOPPED_EPOCHS = 30  # per trial of the study stopped mid-trial: long enough to aim a signal at


def wait_for(condition: Callable[[], bool], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def mid_trial(storage: str, done: int) -> Callable[[], bool]:
    """True once ``done`` trials are counted and another is running in its first third: a signal
    sent then still finds it running on a loaded machine (sent near a trial's end, one landed
    between two trials)."""
    def check() -> bool:
        try:
            trials = trials_of(storage, STUDY)
        except Exception:  # the worker has not created the study yet
            return False
        running = [t for t in trials if t.state == TrialState.RUNNING
                   and 1 <= len(t.intermediate_values) <= STOPPED_EPOCHS // 3]
        return len(counted(trials)) >= done and bool(running)
    return check


def stop_mid_trial(args: tuple[str, ...], storage: str, stop: signal.Signals,
                   done: int) -> tuple[int, str, list]:
    """Start a worker, stop it with ``stop`` in the trial after ``done`` counted ones."""
    worker = start_cli(*args)
    wait_for(mid_trial(storage, done))
    worker.send_signal(stop)
    _, stderr = worker.communicate(timeout=60)
    return worker.returncode, stderr, trials_of(storage, STUDY)


def test_interrupted_and_killed_workers_resume_without_counting_twice(tmp_path):
    args = ("--trials", "4", "--epochs", str(STOPPED_EPOCHS), "--pruner", "none",
            "--heartbeat", "1", "--output", str(tmp_path))
    storage = f"sqlite:///{tmp_path / 'study.db'}"

    code, stderr, _ = stop_mid_trial(args, storage, signal.SIGINT, done=1)  # Ctrl-C
    assert code == 130
    assert "Run the same command again" in stderr and "Traceback" not in stderr
    code, _, before = stop_mid_trial(args, storage, signal.SIGKILL, done=2)  # kill -9
    assert code == -signal.SIGKILL
    rerun = run_cli(*args)
    assert rerun.returncode == 0, rerun.stderr

    after = trials_of(storage, STUDY)
    interrupted = [t.number for t in before if t.state in (TrialState.RUNNING, TrialState.FAIL)]
    assert len(interrupted) == 2
    assert len(counted(after)) == 4  # the total, reached once, nothing counted twice
    assert not [t for t in after if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    kept = {t.number: t.value for t in counted(before)}
    assert {t.number: t.value for t in after if t.number in kept} == kept
    document = json.loads((tmp_path / "results.json").read_text())
    failed = [t for t in document["trials"] if t["state"] == "FAIL"]
    assert [t["number"] for t in failed] == interrupted
    assert all(t["reason"].startswith("interrupted") for t in failed)


def run_two_workers(storage: str, tmp_path: Path) -> list:
    """Two workers on one study, starting to train together (tests/tune/together.py): with
    fast trials, one started first could otherwise run them all."""
    args = ("--trials", "8", "--epochs", "10", "--heartbeat", "1", "--storage", storage,
            "--data", "tests/tune/together.py:digits", "--study-name", STUDY)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    env = {"BNPLACE_TEST_BARRIER": str(barrier), "BNPLACE_TEST_WORKERS": "2"}
    workers = [start_cli(*args, "--output", str(tmp_path / f"w{i}"), env=env) for i in range(2)]
    try:
        # generous: on a loaded 2-core machine two workers' imports alone can take a minute
        results = [worker.communicate(timeout=300) for worker in workers]
    finally:
        for worker in workers:
            worker.kill()  # after a timeout: no worker left running past the test
            worker.wait()
    for worker, (_, stderr) in zip(workers, results):
        assert worker.returncode == 0, stderr
    return trials_of(storage, STUDY)


def assert_shared(trials: list) -> None:
    assert len(counted(trials)) == 8
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert len({t.user_attrs["worker"] for t in counted(trials)}) == 2  # both did work


def test_two_workers_share_one_sqlite_study(tmp_path):
    assert_shared(run_two_workers(f"sqlite:///{tmp_path / 'shared.db'}", tmp_path))


def _postgres_bin() -> Path | None:
    found = shutil.which("pg_ctl") or max(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), default=None)
    return Path(found).resolve().parent if found else None


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A throw-away PostgreSQL server on a unix socket (run as `postgres` when we are root)."""
    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries (pg_ctl) on PATH or in /usr/lib/postgresql")
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_postgres and not _user_exists("postgres"):
        pytest.skip("running as root and there is no `postgres` user to run the server as")
    home = Path(tempfile.mkdtemp(prefix="bnpg-"))
    if as_postgres:
        shutil.chown(home, "postgres")

    def run(*cmd: str) -> None:
        subprocess.run([*as_postgres, *cmd], check=True, capture_output=True)

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
