"""Where a study lives: in memory, an SQLite file in the search folder, or a PostgreSQL server.

Optuna's RDB storage does the work; this module adds what several processes need from it:

- SQLite shared by N local workers: every transaction starts with ``BEGIN IMMEDIATE`` (so two readers
  never deadlock upgrading to writers, the classic cause of "database is locked"), waits up to
  ``BUSY_TIMEOUT_S`` for the lock, and every storage call is retried with backoff when the database
  still reports itself locked or busy. The file is in WAL mode, which needs a local disk: workers on
  several machines share a PostgreSQL study instead (SQLite over NFS is unreliable in any mode).
- Heartbeats: a running trial records one every ``heartbeat_interval`` seconds; a trial silent for three
  intervals (its worker was killed) is marked failed and re-queued by Optuna's
  ``RetryHeartbeatStaleTrialCallback`` with the same parameters.
- ``postgresql://`` URLs use psycopg 3 when psycopg2 is not installed.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import random
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RDBStorage

log = logging.getLogger("babysit")

STUDY_FILE = "study.db"
BUSY_TIMEOUT_S = 30.0  # SQLite waits this long for a lock before giving up on one attempt
RETRIES = 30  # then a storage call is retried this many times, with backoff up to MAX_BACKOFF_S
MAX_BACKOFF_S = 2.0
HEARTBEAT_INTERVAL_S = 5  # a running trial's heartbeat; silent for 3 intervals = its worker died
MAX_RETRY = 3  # a trial whose worker died is re-queued at most this often
_TRANSIENT = ("database is locked", "database is busy", "database table is locked", "server closed",
              "connection", "could not connect", "deadlock", "terminating connection")


def default_url(search_dir: Path) -> str:
    """The SQLite study file inside a search folder."""
    return f"sqlite:///{(search_dir / STUDY_FILE).resolve()}"


def normalize_url(url: str) -> str:
    """Use psycopg 3 for ``postgresql://`` when psycopg2 is missing (SQLAlchemy's default driver)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            has_psycopg2 = importlib.util.find_spec("psycopg2") is not None
            driver = "postgresql://" if has_psycopg2 else "postgresql+psycopg://"
            return driver + url[len(prefix):]
    return url


def display_url(url: str | None) -> str:
    """The URL with its password hidden, for messages and files."""
    if url is None:
        return "in-memory"
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy understands: show it as given
        return url


def _is_transient(exc: BaseException) -> bool:
    import sqlalchemy.exc

    chain: BaseException | None = exc
    while chain is not None:
        if isinstance(chain, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)):
            text = str(chain).lower()
            return any(word in text for word in _TRANSIENT)
        chain = chain.__cause__ or chain.__context__
    return False


def _retrying(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for attempt in range(RETRIES + 1):
            try:
                return method(*args, **kwargs)
            except Exception as exc:
                if attempt == RETRIES or not _is_transient(exc):
                    raise
                delay = min(MAX_BACKOFF_S, 0.05 * 2**attempt) * (0.5 + random.random())
                log.debug("storage busy (%s); retry %d in %.2f s", type(exc).__name__, attempt + 1, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")

    return wrapper


class RetryingRDBStorage(RDBStorage):
    """Optuna's RDB storage whose calls are retried while the database is locked or the connection drops.

    It also finds running trials that never sent a heartbeat: a worker killed between creating its trial
    and the first heartbeat leaves one, which Optuna never calls stale, and the stage would wait for it
    forever. Such a trial is stale once this process has seen it silent for the grace period (on its own
    clock: workers on other machines may have other clocks and time zones).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._silent_since: dict[int, float] = {}

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        stale = _retrying(RDBStorage._get_stale_trial_ids)(self, study_id)
        return stale + [t for t in _retrying(self._never_beaten)(study_id) if t not in stale]

    def _never_beaten(self, study_id: int) -> list[int]:
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session
        from sqlalchemy import orm

        with _create_scoped_session(self.scoped_session) as session:
            running = (
                session.query(models.TrialModel)
                .options(orm.selectinload(models.TrialModel.heartbeats))
                .filter(models.TrialModel.state == optuna.trial.TrialState.RUNNING)
                .filter(models.TrialModel.study_id == study_id)
                .all()
            )
            silent = {t.trial_id for t in running if not t.heartbeats}
        now, grace = time.monotonic(), self.grace_period or 2 * (self.heartbeat_interval or HEARTBEAT_INTERVAL_S)
        self._silent_since = {t: self._silent_since.get(t, now) for t in silent}
        return [t for t, since in self._silent_since.items() if now - since > grace]


for _name in (
    "create_new_study", "delete_study", "set_study_user_attr", "set_study_system_attr", "get_study_id_from_name",
    "get_study_name_from_id", "get_study_directions", "get_study_user_attrs", "get_study_system_attrs",
    "get_all_studies", "create_new_trial", "set_trial_param", "get_trial_id_from_study_id_trial_number",
    "set_trial_state_values", "set_trial_intermediate_value", "set_trial_user_attr", "set_trial_system_attr",
    "get_trial", "get_all_trials", "get_n_trials", "get_best_trial", "record_heartbeat", "_get_trials",
    "check_trial_is_updatable",
):
    if hasattr(RDBStorage, _name):
        setattr(RetryingRDBStorage, _name, _retrying(getattr(RDBStorage, _name)))


def make_storage(url: str | None, *, heartbeat_interval: int = HEARTBEAT_INTERVAL_S) -> Any:
    """An Optuna storage for ``url`` (None: in memory), hardened for several processes."""
    if url is None:
        return optuna.storages.InMemoryStorage()
    url = normalize_url(url)
    sqlite = url.startswith("sqlite")
    engine_kwargs: dict[str, Any] = (
        {"connect_args": {"timeout": BUSY_TIMEOUT_S}} if sqlite else {"pool_pre_ping": True}
    )
    if sqlite:
        Path(url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        callback = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)
        storage = _retry_create(lambda: RetryingRDBStorage(
            url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat_interval,
            grace_period=3 * heartbeat_interval, heartbeat_stale_trial_callback=callback,
        ))
    if sqlite:
        _begin_immediate(storage.engine)
    return storage


def _retry_create(build: Callable[[], Any]) -> Any:
    """Creating the tables can meet another process doing the same: retry while it is transient."""
    for attempt in range(RETRIES):
        try:
            return _retrying(build)()
        except Exception as exc:  # "table ... already exists": the other process won; next time they exist
            if "already exists" not in str(exc) or attempt == RETRIES - 1:
                raise
            time.sleep(0.1 * (1 + random.random()))
    raise AssertionError("unreachable")


def _begin_immediate(engine: Any) -> None:
    """Make every SQLite transaction take the write lock up front, waiting ``BUSY_TIMEOUT_S`` for it."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # pysqlite must not emit its own BEGIN
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")  # readers do not wait for the writer; 2-3x faster commits
        cursor.execute("PRAGMA synchronous = NORMAL")  # safe with WAL: a killed process loses nothing
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened while creating the tables lack the hooks


def fail_stale_trials(study: Any) -> None:
    """Fail (and re-queue) running trials whose worker stopped sending heartbeats."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def requeue(study: Any, trial: Any) -> None:
    """Queue a failed trial again with the same parameters (as Optuna does for a stale one)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)(study, trial)
