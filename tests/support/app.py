"""The test app and the token form, as the unit tests drive them."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from webapp import create_app

from .database import fresh_database

BASE = "https://airisk.test"
#: The fixed "now" of the demo data in tests, so dates are reproducible.
DEMO_NOW = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
#: The demo API's first user (its token is its name).
ALICE = "demo-alice"


def make_app(tmp_path: Any, **overrides: Any) -> Flask:
    """Create a test app whose session store and database live under ``tmp_path``."""
    config = {
        "DATABASE_URL": fresh_database(Path(tmp_path)),
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-0123456789abcdef",
        "SESSION_DIR": str(tmp_path / "sessions"),
        "EVIDENCE_KEY_FILE": str(tmp_path / "evidence-key"),
        "AIRISK_BASE_URL": BASE,
        "AIRISK_RETRIES": 0,
    }
    config.update(overrides)
    return create_app(config)


def csrf_token(client: FlaskClient, path: str = "/token") -> str:
    """Load ``path`` and return the CSRF token of its form."""
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', page
    )
    assert match, "no CSRF token on the page"
    return match.group(1)


def enter_token(client: FlaskClient, token: str, next_path: str = "") -> Any:
    """Submit the token form like a browser does; return the response."""
    form_page = "/token" + (f"?next={next_path}" if next_path else "")
    data = {"csrf_token": csrf_token(client, form_page), "token": token}
    if next_path:
        data["next"] = next_path
    return client.post("/token", data=data)
