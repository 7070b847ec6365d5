"""The dashboard's database: review states, notes and the access trail.

SQLAlchemy 2 Core/ORM with Alembic migrations. SQLite in the instance folder
is the default (WAL mode, so several threads and gunicorn workers on one
machine share it); ``DATABASE_URL`` points several instances at one
PostgreSQL. Nothing here imports Flask: pages call it, and so do the
``airisk-viewer db``/``audit`` commands.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError, OperationalError, ProgrammingError

__all__ = ["Store", "StoreUnavailable", "database_url"]

#: Seconds a writer waits for SQLite's write lock before giving up.
SQLITE_BUSY_SECONDS = 10
#: Seconds to wait for a PostgreSQL connection before calling it down.
CONNECT_SECONDS = 3
#: The advisory lock key that serialises trail appends on PostgreSQL.
TRAIL_LOCK = 0x41495249534B  # "AIRISK"


class StoreUnavailable(RuntimeError):
    """The database did not answer; pages that need it answer 503."""


def _unavailable_errors(engine: Engine) -> tuple[type[BaseException], ...]:
    """Return the errors that mean "no usable database", SQLAlchemy's and the driver's.

    The trail appends through the driver's own cursor (see ``trail.append_in``),
    whose errors SQLAlchemy does not wrap. A database whose schema was never
    upgraded ("no such table") is unusable too, not a bug in a page.
    """
    dbapi = engine.dialect.dbapi
    raw = tuple(
        getattr(dbapi, name)
        for name in ("OperationalError", "InterfaceError", "ProgrammingError")
        if dbapi is not None and hasattr(dbapi, name)
    )
    return (OperationalError, InterfaceError, ProgrammingError, *raw)


def database_url(configured: str | None, instance_path: str) -> str:
    """Return the SQLAlchemy URL: DATABASE_URL, else SQLite in the instance folder."""
    if not configured:
        return "sqlite:///" + str(Path(instance_path) / "airisk-viewer.db")
    url = make_url(configured)
    # "postgresql://" would pick psycopg2; the dependency is psycopg 3.
    if url.drivername in {"postgres", "postgresql"}:
        url = url.set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


def _sqlite_events(engine: Engine) -> None:
    """WAL, a busy timeout, and BEGIN IMMEDIATE for writes (SQLAlchemy's recipe)."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below emit BEGIN itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # WAL with synchronous=NORMAL survives a process crash; only an OS
        # crash may lose the last commits (the documented trade-off).
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # A writer takes the write lock up front: reading the trail's last
        # hash and appending after it must not interleave with another writer.
        if conn.get_execution_options().get("write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


class Store:
    """One database, opened lazily per process (gunicorn forks after create_app)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Engine | None = None
        self._writer: Engine | None = None
        self._pid = 0
        self._lock = threading.Lock()

    @property
    def dialect(self) -> str:
        """Return "sqlite" or "postgresql"."""
        return make_url(self.url).get_backend_name()

    @property
    def engine(self) -> Engine:
        """Return this process's engine (a forked worker makes its own)."""
        if self._engine is None or self._pid != os.getpid():
            with self._lock:
                if self._engine is None or self._pid != os.getpid():
                    self._engine = self._make_engine()
                    self._writer = self._engine.execution_options(write=True)
                    self._pid = os.getpid()
        return self._engine

    def _make_engine(self) -> Engine:
        if self.dialect == "sqlite":
            path = make_url(self.url).database
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(
                self.url,
                connect_args={"timeout": SQLITE_BUSY_SECONDS},
                pool_size=8,
                max_overflow=8,
            )
            _sqlite_events(engine)
            return engine
        return create_engine(
            self.url,
            pool_pre_ping=True,
            pool_size=5,
            max_overflow=10,
            connect_args={"connect_timeout": CONNECT_SECONDS},
        )

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """Yield a connection in a read transaction.

        :raises StoreUnavailable: when the database does not answer.
        """
        try:
            with self.engine.connect() as conn, conn.begin():
                yield conn
        except _unavailable_errors(self.engine) as exc:
            raise StoreUnavailable(_reason(exc)) from exc

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """Yield a connection in a write transaction (committed on success).

        :raises StoreUnavailable: when the database does not answer.
        """
        try:
            self.engine  # noqa: B018 - opens this process's engines
            assert self._writer is not None
            with self._writer.connect() as conn, conn.begin():
                yield conn
        except _unavailable_errors(self.engine) as exc:
            raise StoreUnavailable(_reason(exc)) from exc

    def lock_trail(self, conn: Connection) -> None:
        """Serialise trail appends (SQLite's BEGIN IMMEDIATE already does)."""
        if self.dialect == "postgresql":
            conn.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": TRAIL_LOCK}
            )

    def ping(self) -> bool:
        """Return whether the database answers and its schema is current."""
        from .migrate import is_current

        try:
            with self.read() as conn:
                return is_current(conn)
        except StoreUnavailable:
            return False

    def dispose(self) -> None:
        """Close this process's connections."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = self._writer = None


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "orig", None) or exc)
