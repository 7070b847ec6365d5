"""A migrated SQLite database per test app, copied from one migrated once."""

from __future__ import annotations

import functools
import shutil
import tempfile
from pathlib import Path


@functools.cache
def migrated_database() -> Path:
    """Return an SQLite database at the newest migration (copied per app)."""
    from webapp.store import Store
    from webapp.store.migrate import upgrade

    path = Path(tempfile.mkdtemp(prefix="airisk-db-")) / "template.db"
    store = Store(f"sqlite:///{path}")
    upgrade(store)
    store.dispose()
    return path


def fresh_database(folder: Path) -> str:
    """Copy the migrated database into ``folder``; return its DATABASE_URL."""
    folder.mkdir(parents=True, exist_ok=True)
    database = folder / "airisk-viewer.db"
    shutil.copyfile(migrated_database(), database)
    return f"sqlite:///{database}"
