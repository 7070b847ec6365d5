"""Alembic, driven from code: ``airisk-viewer db upgrade`` and the start-up check."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from . import Store

_SCRIPTS = Path(__file__).resolve().parent / "migrations"


def _config(store: Store) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    # A URL with "%" (an encoded password) would be read as interpolation.
    config.set_main_option("sqlalchemy.url", store.url.replace("%", "%%"))
    return config


def head() -> str | None:
    """Return the newest migration's revision."""
    return ScriptDirectory(str(_SCRIPTS)).get_current_head()


def is_current(conn: Connection) -> bool:
    """Return whether the database is at the newest migration."""
    return MigrationContext.configure(conn).get_current_revision() == head()


def upgrade(store: Store) -> None:
    """Bring the database to the newest migration (idempotent).

    :raises StoreUnavailable: when the database does not answer.
    """
    with store.write() as conn:
        config = _config(store)
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
