"""Where a study lives: in memory, a journal file in the search folder, or a PostgreSQL server.

Optuna does the work through its public storages; this module picks one for a URL and adds what several
processes need:

- Local workers share Optuna's journal file (``study.journal``, ``journal:///path``): each change is one line
  appended under a lock file, so no database lock can stall a worker. Optuna recommends it for parallel
  workers on one machine. Search folders made before it keep their ``study.db`` and open as SQLite.
- SQLite and PostgreSQL go through Optuna's ``RDBStorage``, wrapped in ``RetryingStorage``: every call is
  retried with backoff while the database reports itself locked or the connection dropped. SQLite
  transactions start with ``BEGIN IMMEDIATE`` (two readers never deadlock upgrading to writers, the classic
  cause of "database is locked") and wait up to ``BUSY_TIMEOUT_S`` for the lock; the file is in WAL mode,
  which needs a local disk: workers on several machines share a PostgreSQL study instead.
- ``postgresql://`` URLs use psycopg 3 when psycopg2 is not installed.
- Failing fast: a wrong password, an unknown user or database, an unknown host or a missing driver is a
  :class:`~babysit.errors.StorageError` at once (a connection attempt gives up after ``CONNECT_TIMEOUT_S``);
  only transient errors (a locked SQLite file, a dropped or refused connection) are retried, and every retry
  of a connection is logged. No message shows a password (``display_url``, ``babysit._redact``).
- ``read_only=True`` (``babysit search status``) opens an existing study without writing or creating anything:
  the journal only read, SQLite in ``mode=ro``, PostgreSQL in read-only transactions, and no tables created.

Whether a trial's worker is still alive is not the storage's business: ``_liveness`` watches heartbeats that
any storage holds.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import random
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, RDBStorage

from babysit._redact import expand_env, redact_text, redact_url
from babysit.errors import StorageError

log = logging.getLogger("babysit")

JOURNAL_FILE = "study.journal"  # a local search's study (Optuna's journal storage)
STUDY_FILE = "study.db"  # ... as searches before the journal kept it (SQLite); still opened
JOURNAL_SCHEME = "journal://"  # journal:///abs/path/study.journal
JOURNAL_LOCK_GRACE_S = 10  # a journal lock older than this was left by a killed process
BUSY_TIMEOUT_S = 30.0  # SQLite waits this long for a lock before giving up on one attempt
RETRIES = 30  # then a storage call is retried this many times, with backoff up to MAX_BACKOFF_S
MAX_BACKOFF_S = 2.0
CONNECT_TIMEOUT_S = 4  # one attempt to reach a database server
CONNECT_BUDGET_S = 5.0  # opening a study: a refused connection is retried (visibly) this long, then an error
ENV_STORAGE = "BABYSIT_STORAGE"  # the CLI reads --storage from here: the URL stays out of the command line

# What a database error means, from its message (psycopg, psycopg2, sqlite3): regular expressions, the first
# kind with a match wins.
_KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("locked", ("database is locked", "database is busy", "database table is locked")),
    ("auth", ("password authentication failed", "authentication failed", "no password supplied",
              "password is required", r'(role|database|user) "[^"]*" does not exist', "pg_hba.conf",
              "permission denied for database", "invalid authorization")),
    ("host", ("could not translate host name", "failed to resolve host", "name or service not known",
              "nodename nor servname", "temporary failure in name resolution", "no address associated")),
    ("timeout", ("timeout expired", "timed out", "connection timeout")),
    ("refused", ("connection refused", "no route to host", "network is unreachable", "is the server running")),
    ("lost", ("server closed the connection", "terminating connection", "connection already closed",
              "ssl syscall error", "connection reset", "broken pipe", "deadlock", "could not serialize",
              "could not receive data", "connection to server", "eof detected", "lost connection")),
    ("file", ("unable to open database file", "disk i/o error", "readonly database", "read-only",
              "file is not a database", "database disk image is malformed")),
)
_TRANSIENT = {"locked", "lost"}  # retried during a search; "refused" and "timeout" only while opening it


def default_url(search_dir: Path) -> str:
    """The study inside a search folder: its journal file (its SQLite file, for a search made before journals)."""
    if (search_dir / STUDY_FILE).is_file() and not (search_dir / JOURNAL_FILE).is_file():
        return f"sqlite:///{(search_dir / STUDY_FILE).resolve()}"
    return f"{JOURNAL_SCHEME}{(search_dir / JOURNAL_FILE).resolve()}"


def local_study(search_dir: Path) -> Path | None:
    """The study file a search folder holds, if any."""
    return next((search_dir / name for name in (JOURNAL_FILE, STUDY_FILE) if (search_dir / name).is_file()), None)


def resolve_url(storage: str) -> str:
    """A storage as given (a URL, ``${VAR}`` / ``env:VAR`` naming one in the environment) -> the URL to open."""
    url = expand_env(storage, what="the study's storage")
    return normalize_url(url or "")


def normalize_url(url: str) -> str:
    """Use psycopg 3 for ``postgresql://`` when psycopg2 is missing (SQLAlchemy's default driver)."""
    url = expand_env(url, what="the study's storage") or ""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            has_psycopg2 = importlib.util.find_spec("psycopg2") is not None
            driver = "postgresql://" if has_psycopg2 else "postgresql+psycopg://"
            return driver + url[len(prefix):]
    return url


def display_url(url: str | None) -> str:
    """The URL with its password hidden (every form: ``babysit._redact.redact_url``), for messages and files."""
    return redact_url(url)


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    node: BaseException | None = exc
    while node is not None and node not in out:
        out.append(node)
        node = node.__cause__ or node.__context__
    return out


def error_kind(exc: BaseException) -> str | None:
    """``locked``, ``auth``, ``host``, ``timeout``, ``refused``, ``lost``, ``file``, ``driver``, ``url`` or None."""
    import sqlalchemy.exc

    for node in _chain(exc):
        if isinstance(node, ModuleNotFoundError):
            return "driver"
        if isinstance(node, (sqlalchemy.exc.NoSuchModuleError, sqlalchemy.exc.ArgumentError)) or (
                isinstance(node, ValueError) and "invalid literal for int" in str(node)):
            return "url"
        if isinstance(node, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)) or \
                type(node).__module__.split(".")[0] in ("psycopg", "psycopg2", "sqlite3"):
            text = str(node).lower()
            for kind, patterns in _KINDS:
                if any(re.search(pattern, text) for pattern in patterns):
                    return kind
            return "other"
    return None


def _is_transient(exc: BaseException) -> bool:
    return error_kind(exc) in _TRANSIENT


def _reason(exc: BaseException) -> str:
    """The database's own words, first line, without SQLAlchemy's wrapping and with no secret."""
    import sqlalchemy.exc

    for node in _chain(exc):
        if isinstance(node, (sqlalchemy.exc.DBAPIError,)) and node.orig is not None:
            text = str(node.orig)
            break
        if type(node).__module__.split(".")[0] in ("psycopg", "psycopg2", "sqlite3"):
            text = str(node)
            break
    else:
        text = str(exc)
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("(Background")]
    return redact_text(lines[0] if lines else type(exc).__name__)


def storage_error(exc: BaseException, url: str | None) -> StorageError:
    """The one-line error for a storage failure: what the database said, and what to do about it."""
    where = display_url(url)
    kind = error_kind(exc)
    reason = _reason(exc)
    if kind == "auth":
        return StorageError(f"cannot log in to the study database {where}: {reason}. Check the user name, password "
                            "and database name in the URL (keep the password out of files and command lines with "
                            f"--storage '${{VAR}}' or the {ENV_STORAGE} environment variable).")
    if kind == "host":
        return StorageError(f"cannot find the study database's host in {where}: {reason}. Check the host name.")
    if kind in ("refused", "timeout"):
        return StorageError(f"no database server answers at {where}: {reason}. Check that the server runs and "
                            "accepts connections from this machine (host, port, firewall).")
    if kind == "driver":
        return StorageError(f"the driver for {where} is not installed ({reason}); for PostgreSQL: "
                            "pip install 'babysit[postgres]'.")
    if kind == "url":
        return StorageError(f"{where} is not a storage URL SQLAlchemy can open ({reason}); write e.g. "
                            "postgresql://user:password@host:5432/db or sqlite:////path/study.db.")
    if kind == "file":
        return StorageError(f"cannot open the study database {where}: {reason}. Check that the folder exists and "
                            "that this user may read and write it.")
    if kind == "locked":
        return StorageError(f"the study database {where} stayed locked through {RETRIES} retries ({reason}); "
                            "another process holds it: try again, or use PostgreSQL for many workers.")
    return StorageError(f"the study database {where} failed: {reason}.")


def _retrying(
    method: Callable[..., Any], *, url: str | Callable[[Any], str | None] | None = None
) -> Callable[..., Any]:
    """Retry ``method`` while the database is locked or the connection dropped; a database error of a known kind
    (a wrong password, an unknown host ...) becomes a StorageError at once. ``url`` (or ``url(self)`` of a
    method) names the database in messages."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for attempt in range(RETRIES + 1):
            try:
                return method(*args, **kwargs)
            except Exception as exc:
                kind = error_kind(exc)
                if kind in (None, "other"):
                    raise
                where = url(args[0]) if callable(url) and args else url if isinstance(url, str) else None
                if kind not in _TRANSIENT or attempt == RETRIES:
                    raise storage_error(exc, where) from exc
                delay = min(MAX_BACKOFF_S, 0.05 * 2**attempt) * (0.5 + random.random())
                visible = kind == "lost" or attempt >= 5  # a few lock waits are routine with many workers
                (log.warning if visible else log.debug)(
                    "study database %s: %s; retry %d of %d in %.1f s", display_url(where) if where else "",
                    _reason(exc), attempt + 1, RETRIES, delay,
                )
                time.sleep(delay)
        raise AssertionError("unreachable")

    return wrapper


class RetryingStorage(BaseStorage):
    """An RDB storage whose calls are retried while the database is locked or the connection drops.

    It wraps Optuna's public ``RDBStorage`` and forwards Optuna's public storage interface, one method at a time,
    through ``_retrying``: nothing of Optuna is patched or subclassed beyond ``BaseStorage``, the documented way
    to provide a storage.
    """

    def __init__(self, inner: RDBStorage) -> None:
        self.inner = inner
        self.url = inner.url
        self.engine = inner.engine

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return _retrying(getattr(self.inner, name), url=self.url)(*args, **kwargs)

    def create_new_study(self, directions: Any, study_name: str | None = None) -> int:
        return self._call("create_new_study", directions, study_name)

    def delete_study(self, study_id: int) -> None:
        self._call("delete_study", study_id)

    def set_study_user_attr(self, study_id: int, key: str, value: Any) -> None:
        self._call("set_study_user_attr", study_id, key, value)

    def set_study_system_attr(self, study_id: int, key: str, value: Any) -> None:
        self._call("set_study_system_attr", study_id, key, value)

    def get_study_id_from_name(self, study_name: str) -> int:
        return self._call("get_study_id_from_name", study_name)

    def get_study_name_from_id(self, study_id: int) -> str:
        return self._call("get_study_name_from_id", study_id)

    def get_study_directions(self, study_id: int) -> Any:
        return self._call("get_study_directions", study_id)

    def get_study_user_attrs(self, study_id: int) -> dict[str, Any]:
        return self._call("get_study_user_attrs", study_id)

    def get_study_system_attrs(self, study_id: int) -> dict[str, Any]:
        return self._call("get_study_system_attrs", study_id)

    def get_all_studies(self) -> Any:
        return self._call("get_all_studies")

    def create_new_trial(self, study_id: int, template_trial: Any = None) -> int:
        return self._call("create_new_trial", study_id, template_trial)

    def set_trial_param(self, trial_id: int, param_name: str, param_value_internal: float, distribution: Any) -> None:
        self._call("set_trial_param", trial_id, param_name, param_value_internal, distribution)

    def get_trial_id_from_study_id_trial_number(self, study_id: int, trial_number: int) -> int:
        return self._call("get_trial_id_from_study_id_trial_number", study_id, trial_number)

    def set_trial_state_values(self, trial_id: int, state: Any, values: Any = None) -> bool:
        return self._call("set_trial_state_values", trial_id, state, values)

    def set_trial_intermediate_value(self, trial_id: int, step: int, intermediate_value: float) -> None:
        self._call("set_trial_intermediate_value", trial_id, step, intermediate_value)

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._call("set_trial_user_attr", trial_id, key, value)

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._call("set_trial_system_attr", trial_id, key, value)

    def get_trial(self, trial_id: int) -> Any:
        return self._call("get_trial", trial_id)

    def get_all_trials(self, study_id: int, deepcopy: bool = True, states: Any = None) -> Any:
        return self._call("get_all_trials", study_id, deepcopy=deepcopy, states=states)

    def get_n_trials(self, study_id: int, state: Any = None) -> int:
        return self._call("get_n_trials", study_id, state)

    def get_best_trial(self, study_id: int) -> Any:
        return self._call("get_best_trial", study_id)

    def check_trial_is_updatable(self, trial_id: int, trial_state: Any) -> None:
        self._call("check_trial_is_updatable", trial_id, trial_state)

    def remove_session(self) -> None:
        self.inner.remove_session()


def make_storage(url: str | None, *, read_only: bool = False) -> BaseStorage:
    """An Optuna storage for ``url`` (None: in memory), hardened for several processes.

    ``journal:///path`` is Optuna's journal file (local workers); ``sqlite:///`` and ``postgresql://`` its RDB
    storage, wrapped in ``RetryingStorage``. ``read_only``: open an existing study and change nothing (no
    folder, file or table is created).

    Raises:
        StorageError: the database cannot be reached or logged in to (within ``CONNECT_BUDGET_S``), or, read-only,
            holds no study.
    """
    if url is None:
        return optuna.storages.InMemoryStorage()
    url = normalize_url(url)
    if url.startswith(JOURNAL_SCHEME):
        return _journal(url[len(JOURNAL_SCHEME):], read_only=read_only)
    sqlite = url.startswith("sqlite")
    engine_kwargs: dict[str, Any]
    if sqlite:
        path = url.split("///", 1)[1] if "///" in url else ""
        if read_only:
            if not path or not Path(path).is_file():
                raise StorageError(f"no study database at {path or url}.")
            url = f"sqlite:///file:{path}?mode=ro&uri=true"
        elif path:
            _make_parent(Path(path))
        engine_kwargs = {"connect_args": {"timeout": BUSY_TIMEOUT_S}}
    else:
        connect_args: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT_S}
        if read_only:
            connect_args["options"] = "-c default_transaction_read_only=on"
        engine_kwargs = {"pool_pre_ping": True, "connect_args": connect_args}
    if read_only:
        _check_study_tables(url, engine_kwargs)
    inner = _retry_create(lambda: RDBStorage(url, engine_kwargs=engine_kwargs, skip_table_creation=read_only), url)
    if sqlite:
        _sqlite_hooks(inner.engine, write=not read_only)
    return RetryingStorage(inner)


def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create the folder of the study database {path}: {exc.strerror}.") from None


def _journal(path: str, *, read_only: bool) -> BaseStorage:
    """Optuna's journal file: every change one appended line, under a lock file; each process replays the lines.

    A lock left by a killed process is taken over after ``JOURNAL_LOCK_GRACE_S`` (a write holds it for
    milliseconds). A file that is not a journal is a StorageError naming it.
    """
    from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock, JournalStorage

    file = Path(path)
    if read_only and not file.is_file():
        raise StorageError(f"no study journal at {file}.")
    if not read_only:
        _make_parent(file)
    try:
        backend = JournalFileBackend(str(file), lock_obj=JournalFileSymlinkLock(str(file),
                                                                                grace_period=JOURNAL_LOCK_GRACE_S))
        storage = JournalStorage(backend)
    except (ValueError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise StorageError(f"{file} is not a study journal Optuna can read ({type(exc).__name__}: {exc}); "
                           "it may be damaged or not a journal at all.") from None
    except OSError as exc:
        raise StorageError(f"cannot open the study journal {file}: {exc.strerror}. Check that the folder exists "
                           "and that this user may read and write it.") from None
    if file.stat().st_size and not storage.get_all_studies():  # Optuna skips a last line that is not a log
        raise StorageError(f"{file} is not a study journal Optuna can read (no study in it); it may be damaged or "
                           "not a journal at all.")
    return storage


def trial_id(storage: BaseStorage, study: Any, number: int) -> int:
    """The storage's id of trial ``number`` of ``study`` (Optuna's public storage interface)."""
    return storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(study.study_name), number)


def _check_study_tables(url: str, engine_kwargs: dict[str, Any]) -> None:
    """Read-only: the database must already hold Optuna's tables (RDBStorage would create them)."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, **engine_kwargs)
    try:
        def tables() -> bool:
            return sqlalchemy.inspect(engine).has_table("studies")

        if not _connecting(tables, url)():
            raise StorageError(f"{display_url(url)} holds no study (no Optuna tables); check the URL.")
    finally:
        engine.dispose()


def _connecting(build: Callable[[], Any], url: str) -> Callable[[], Any]:
    """``build`` retried while a server refuses connections or times out, for ``CONNECT_BUDGET_S`` at most (each
    retry logged); locks and dropped connections as in ``_retrying``; anything else a StorageError at once."""

    def attempt() -> Any:
        started = time.monotonic()
        tries = 0
        while True:
            try:
                return _retrying(build, url=url)()
            except StorageError as exc:
                kind = error_kind(exc.__cause__) if exc.__cause__ is not None else None
                tries += 1
                left = CONNECT_BUDGET_S - (time.monotonic() - started)
                if kind not in ("refused",) or left <= 0.5:
                    raise
                delay = min(1.0, left - 0.5)
                log.warning("study database %s: %s; retry %d in %.1f s", display_url(url),
                            _reason(exc.__cause__), tries, delay)  # type: ignore[arg-type]
                time.sleep(delay)

    return attempt


def _retry_create(build: Callable[[], Any], url: str | None = None) -> Any:
    """Creating the tables can meet another process doing the same: retry while it is transient."""
    for attempt in range(RETRIES):
        try:
            return _connecting(build, url or "")()
        except StorageError:
            raise
        except Exception as exc:  # "table ... already exists": the other process won; next time they exist
            if "already exists" not in str(exc) or attempt == RETRIES - 1:
                raise storage_error(exc, url) from exc
            time.sleep(0.1 * (1 + random.random()))
    raise AssertionError("unreachable")


def _sqlite_hooks(engine: Any, *, write: bool) -> None:
    """Every SQLite connection waits ``BUSY_TIMEOUT_S`` for a lock; a writing one also takes the write lock up
    front (``BEGIN IMMEDIATE``) and keeps the file in WAL mode."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # pysqlite must not emit its own BEGIN
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        if write:
            cursor.execute("PRAGMA journal_mode = WAL")  # readers do not wait for the writer; 2-3x faster commits
            cursor.execute("PRAGMA synchronous = NORMAL")  # safe with WAL: a killed process loses nothing
        cursor.close()

    if write:
        @event.listens_for(engine, "begin")
        def _on_begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened while creating the tables lack the hooks
