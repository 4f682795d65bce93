"""Where a study lives, and how its trials are counted so a study can be resumed and shared.

A study's total is counted over *finished work*: completed and pruned trials, and trials that
failed with an error of their own (a broken model fails every time; re-running it would not
help). A trial whose worker stopped mid-way (Ctrl-C, ``kill -9``, a lost machine) is failed
without a reason — by Optuna on Ctrl-C, by the heartbeat check otherwise — and is not counted,
so the next run trains that slot again and nothing is counted twice.
"""

from __future__ import annotations

import importlib.util
import json
import math
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
import sqlalchemy.exc
from optuna.exceptions import ExperimentalWarning
from optuna.pruners import BasePruner
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from bnplace.loading import describe_error
from bnplace.tune.options import TuneInputError, TuneOptions

REASON = "reason"  # trial user attr: why a trial was pruned or failed
NOT_RUN = "not_run"  # trial user attr: why a trial was given up before training
WORKER = "worker"  # trial user attr: host:pid of the process that ran it
EPOCH_SECONDS = "epoch_seconds"  # trial user attr: median training seconds per epoch
EPOCHS = "epochs"  # trial user attr: epochs trained (a diverged epoch included)
SETTINGS = "bnplace_settings"  # study user attr: what the study was started with
SQLITE_LOCK_TIMEOUT_S = 60  # several local workers may share one SQLite file
CONNECT_TIMEOUT_S = 10  # a database server that never answers: without it, a wait with no end
SCHEMA_RACE_RETRIES = 5


def storage_url(options: TuneOptions, output: Path) -> str:
    """The study's storage: ``--storage`` as given, else a SQLite file in the output folder."""
    return options.storage or f"sqlite:///{(output / 'study.db').resolve()}"


def open_study(options: TuneOptions, output: Path, name: str, settings: Mapping[str, Any],
               pruner: BasePruner) -> optuna.Study:
    """Create the study, or load it to resume or join; refuse one started with other settings.

    Its sampler is Optuna's default until the caller sets one seeded for what the study holds.
    """
    given = storage_url(options, output)
    url = with_installed_driver(given)
    try:
        _check_reachable(url)
        storage = _connect(url, options.heartbeat)
    except Exception as err:  # SQLAlchemy's errors for a bad URL, a missing driver, no server
        raise TuneInputError(f"cannot open storage {shown_url(given)!r}: {describe_error(err)}"
                             f"{_missing_folder_hint(url)}") from err
    study = optuna.create_study(storage=storage, study_name=name, direction="maximize",
                                pruner=pruner, load_if_exists=True)
    settings = json.loads(json.dumps(settings, default=str))  # as stored: tuples are lists
    started_with = study.user_attrs.get(SETTINGS)
    if started_with is None:
        study.set_user_attr(SETTINGS, settings)
        return study
    # a setting the study did not record (started by an older bnplace) cannot tell it apart
    changed = ", ".join(f"{key} {started_with[key]!r} -> {value!r}" for key, value in settings.items()
                        if key in started_with and started_with[key] != value)
    if changed:
        other = "--study-name" if options.storage else "--study-name or --output"
        raise TuneInputError(f"study {name!r} was started with other settings ({changed}); "
                             f"run it with the same ones, or choose another {other}")
    return study


def shown_url(url: str) -> str:
    """``url`` with its password, if any, as ``***``: fit for the console and error messages."""
    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:  # not a URL at all: it holds no password to hide
        return url


def _engine_kwargs(url: str) -> dict[str, Any]:
    """SQLite waits for another worker's lock; a server gets a time limit to answer in."""
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": SQLITE_LOCK_TIMEOUT_S}}
    if url.startswith("postgresql"):  # libpq's option, for psycopg2 and psycopg 3 alike
        return {"connect_args": {"connect_timeout": CONNECT_TIMEOUT_S}}
    return {}


def _check_reachable(url: str) -> None:
    """Connect once: a server that is down, unreachable or refuses us fails here, at once,
    not after the retries :func:`_connect` gives a schema being created by another worker."""
    engine = sqlalchemy.create_engine(url, **_engine_kwargs(url))
    try:
        engine.connect().close()
    finally:
        engine.dispose()


def _missing_folder_hint(url: str) -> str:
    """Why SQLite cannot open a file most often: its folder does not exist (it is not created)."""
    try:
        database = sqlalchemy.engine.make_url(url).database
    except sqlalchemy.exc.ArgumentError:
        return ""
    if not url.startswith("sqlite") or not database or database == ":memory:":
        return ""
    folder = Path(database).parent
    return "" if folder.is_dir() else f" (the folder {folder.resolve()} does not exist)"


def _connect(url: str, heartbeat: int) -> RDBStorage:
    """The storage, with heartbeats; retried while another worker is creating the same schema."""
    engine_kwargs = _engine_kwargs(url)
    attempt = 1
    while True:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)  # heartbeats: stable in practice
                storage = RDBStorage(url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat,
                                     grace_period=2 * heartbeat)
            if url.startswith("sqlite"):
                _serialize_sqlite_transactions(storage.engine)
            return storage
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError):
            # two workers creating the tables at once, or SQLite busy: wait and try again
            if attempt == SCHEMA_RACE_RETRIES:
                raise
            time.sleep(0.2 * attempt)
            attempt += 1


def _serialize_sqlite_transactions(engine: sqlalchemy.engine.Engine) -> None:
    """Make every SQLite transaction take the write lock when it begins (``BEGIN IMMEDIATE``).

    pysqlite runs a transaction's first SELECT outside it, so two workers can both read a queued
    trial as WAITING and both claim it; PostgreSQL's row locks prevent that, this does for SQLite
    (SQLAlchemy's documented pysqlite recipe).
    """
    @sqlalchemy.event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None

    @sqlalchemy.event.listens_for(engine, "begin")
    def _begin_immediate(connection: sqlalchemy.engine.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened while creating the schema lack the hooks


def with_installed_driver(url: str) -> str:
    """``postgresql://`` with the driver that is installed: SQLAlchemy 2.1 defaults to psycopg 3,
    while psycopg2-binary is the one most setups (and bnplace's ``distributed`` extra) have."""
    if not url.startswith("postgresql://") or importlib.util.find_spec("psycopg") is not None:
        return url
    if importlib.util.find_spec("psycopg2") is None:
        raise TuneInputError(f"cannot open storage {shown_url(url)!r}: no PostgreSQL driver is "
                             "installed; pip install 'bnplace[distributed]' (psycopg2-binary) "
                             "or psycopg")
    return "postgresql+psycopg2://" + url.removeprefix("postgresql://")


def is_counted(trial: FrozenTrial) -> bool:
    """Whether the trial counts towards the study's total (see the module docstring)."""
    if trial.state == TrialState.FAIL:
        return REASON in trial.user_attrs
    return trial.state in (TrialState.COMPLETE, TrialState.PRUNED)


def best_completed(trials: Sequence[FrozenTrial]) -> FrozenTrial | None:
    """The completed trial with the highest validation accuracy, if any."""
    completed = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    return max(completed, key=lambda t: t.value, default=None)  # type: ignore[arg-type, return-value]


def over_budget(study: optuna.Study, number: int, total: int) -> bool:
    """Whether the trial ``number`` came after the study's ``total`` was already taken.

    Workers check the budget before asking for a trial, but two can pass that check at once;
    this later check, by trial number, lets exactly one of them go on.
    """
    earlier = [t for t in study.get_trials(deepcopy=False) if t.number < number]
    return sum(is_counted(t) or t.state == TrialState.RUNNING for t in earlier) >= total


def reason_of(trial: FrozenTrial) -> str | None:
    """Why a trial did not complete, in words (None for a completed trial)."""
    if NOT_RUN in trial.user_attrs:
        return trial.user_attrs[NOT_RUN]
    if trial.state == TrialState.FAIL and REASON not in trial.user_attrs:
        return "interrupted: its worker stopped before the trial finished (not counted)"
    return trial.user_attrs.get(REASON)


def fail_stale_trials(study: optuna.Study) -> None:
    """Fail the RUNNING trials whose worker stopped sending heartbeats."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def enqueue_missing(study: optuna.Study, cells: Sequence[Mapping[str, Any]], budget: int) -> None:
    """Queue the ``cells`` no live or counted trial covers, at most as many as the budget has left."""
    trials = study.get_trials(deepcopy=False)
    live = [t for t in trials if is_counted(t) or t.state in (TrialState.RUNNING, TrialState.WAITING)]
    taken = [t.system_attrs.get("fixed_params", t.params) for t in live]
    room = budget - len(live)
    for cell in cells:
        if room <= 0:
            return
        if not any(_same_params(cell, params) for params in taken):
            study.enqueue_trial(dict(cell))
            room -= 1


def _same_params(cell: Mapping[str, Any], params: Mapping[str, Any]) -> bool:
    def same(a: Any, b: Any) -> bool:
        if isinstance(a, float) and isinstance(b, float):
            return math.isclose(a, b, rel_tol=1e-9)
        return a == b

    return all(key in params and same(value, params[key]) for key, value in cell.items())
