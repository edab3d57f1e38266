"""Engine and sessions for SQLite (default) or PostgreSQL, and migration to the newest schema."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from feedlens.core.errors import ConfigError, StorageError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = "feedlens.storage:migrations"
VERSIONS = Path(__file__).parent / "migrations" / "versions"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: readers (API queries) never block the writer (ingest), and a kill -9 cannot corrupt the file.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; safe with WAL
    cursor.execute("PRAGMA foreign_keys=ON")  # SQLite ignores ON DELETE CASCADE without it
    cursor.execute("PRAGMA busy_timeout=30000")  # a second process (CLI beside the server) waits, not fails
    cursor.close()


# SQLite primary result codes (sqlite3.Error.sqlite_errorcode & 0xff) and PostgreSQL SQLSTATEs that mean
# "the disk cannot take this write", as opposed to a bug or a bad query.
_SQLITE_FULL, _SQLITE_READONLY, _SQLITE_CANTOPEN = 13, 8, 14
_PG_FULL, _PG_READ_ONLY = {"53100"}, {"25006"}


def storage_error(exc: DBAPIError, where: str) -> StorageError | None:
    """The typed error for a database that is full or cannot be written, else None."""
    orig = exc.orig
    sqlite_code = getattr(orig, "sqlite_errorcode", None)
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlite_code is not None:
        primary = sqlite_code & 0xFF
        if primary == _SQLITE_FULL:
            return StorageError(StorageError.FULL, f"no space left to write {where}: free some disk space")
        if primary in (_SQLITE_READONLY, _SQLITE_CANTOPEN):
            return StorageError(
                StorageError.NOT_WRITABLE,
                f"{where} cannot be written: point FEEDLENS_DATA_DIR at a writable folder",
            )
    if sqlstate in _PG_FULL:
        return StorageError(StorageError.FULL, "the PostgreSQL server is out of disk space")
    if sqlstate in _PG_READ_ONLY:
        return StorageError(StorageError.NOT_WRITABLE, "the PostgreSQL server is read-only (a standby?)")
    return None


@contextmanager
def typed_storage_errors(where: str) -> Iterator[None]:
    """Re-raise a full or unwritable disk as StorageError; anything else passes through unchanged."""
    try:
        yield
    except DBAPIError as exc:
        typed = storage_error(exc, where)
        if typed is None:
            raise
        raise typed from exc
    except OSError as exc:  # SQLite's folder cannot be created
        typed_os = StorageError.from_os_error(exc, where)
        if typed_os is None:
            raise
        raise typed_os from exc


def create_db_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL and foreign keys, and its folder is created."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"FEEDLENS_DATABASE_URL is not a database URL: {exc}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            with typed_storage_errors(f"the database folder {Path(parsed.database).parent}"):
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")  # the driver we ship
        return create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=10)
    raise ConfigError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config  # alembic costs ~0.5 s to import: only when a migration runs

    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    config.attributes["engine"] = engine
    return config


def head_revision() -> str:
    """The newest migration's id. Migrations are one linear chain whose ids are their file prefixes
    (0001_..., 0002_...), so the head is the largest prefix; tests check this against alembic's view."""
    return max(p.name.split("_", 1)[0] for p in VERSIONS.glob("[0-9]*_*.py"))


def current_revision(engine: Engine) -> str | None:
    """The revision recorded in the database; None for an empty database."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):  # a new, empty database
            return None
        revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        return None if revision is None else str(revision)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (creates it on an empty database). Idempotent; a database
    already at the head costs one query and never imports alembic."""
    if current_revision(engine) == head_revision():
        return
    from alembic import command

    with _migration_lock(engine):
        if current_revision(engine) == head_revision():  # another replica migrated while we waited
            return
        command.upgrade(alembic_config(engine), "head")


_MIGRATION_LOCK = 0x66656564  # any constant: PostgreSQL advisory locks are named by a number


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """Servers starting together on one PostgreSQL: one migrates, the others wait and find it done.
    (SQLite serves one process; its file lock is enough there.)"""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _MIGRATION_LOCK})
        conn.commit()  # the lock belongs to the connection, not to this transaction
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _MIGRATION_LOCK})
            conn.commit()


def schema_is_current(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()


class Database:
    """Engine + session factory. `session()` is a unit of work: commit on success, rollback on error."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_db_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._migrated = False

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    def migrate(self) -> None:
        """Migrate once per process: CLI commands and services call this freely."""
        if not self._migrated:
            with typed_storage_errors(self._where):
                migrate(self.engine)
            self._migrated = True

    @property
    def _where(self) -> str:
        """How messages name the database: its file for SQLite, never a PostgreSQL URL (it may hold a
        password)."""
        database = self.engine.url.database
        return f"the database {database}" if self.backend == "sqlite" and database else "the database"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work. A full or read-only disk raises StorageError and the whole unit rolls back."""
        with typed_storage_errors(self._where), self._sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
