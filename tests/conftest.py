"""Fixtures in flaskr's style: an app, a client, the fake and the demo AIRisk.

AIRisk is faked at the HTTP layer: ``responses`` for unit tests, the real demo
API on a loopback port for end-to-end tests. Nothing here patches our own code.
Helpers live in ``tests/support/``; this file keeps only fixtures.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses
from flask import Flask
from flask.testing import FlaskClient
from responses import matchers

# Helpers assert too: rewrite their asserts like a test's, for clear failures.
pytest.register_assert_rewrite("support")

from support import (  # noqa: E402
    DEMO_NOW,
    Browser,
    Counting,
    enter_token,
    make_app,
    signed_in_reviewer,
)
from support.database import fresh_database  # noqa: E402
from support.fake_airisk import AGENTS, AGENTS_URL, LIST_URL, TOKEN  # noqa: E402

from webapp.demo_api import create_demo_app  # noqa: E402
from webapp.demo_api.server import DemoServer  # noqa: E402

# Hypothesis keeps its example database and caches in ./.hypothesis unless
# told otherwise; tests write only under temporary folders. It reads this on
# first use, after conftest is imported.
os.environ.setdefault(
    "HYPOTHESIS_STORAGE_DIRECTORY", tempfile.mkdtemp(prefix="airisk-hypothesis-")
)


@pytest.fixture(autouse=True)
def _clean_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Keep the developer's AIRISK_*/FLASK_*/SESSION_* variables out of tests.

    Each test gets its own migrated SQLite database (DATABASE_URL), session
    folder and signing key file, also inherited by the dashboards tests start
    as processes: nothing is written to instance/.
    """
    for name in list(os.environ):
        if name.startswith(
            ("AIRISK_", "FLASK_", "SESSION_", "EVIDENCE_", "AUDIT_")
        ) or name in {
            "SECRET_KEY",
            "SECRET_KEY_FALLBACKS",
            "TRUSTED_HOSTS",
            "DATABASE_URL",
        }:
            monkeypatch.delenv(name)
    monkeypatch.setenv("DATABASE_URL", fresh_database(tmp_path_factory.mktemp("db")))
    # An app built from the environment (the command line's db and audit
    # commands) would otherwise keep sessions and a signing key in instance/.
    state = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("SESSION_DIR", str(state / "sessions"))
    monkeypatch.setenv("EVIDENCE_KEY_FILE", str(state / "evidence-key"))


@pytest.fixture
def app(tmp_path: Any) -> Flask:
    return make_app(tmp_path)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def upstream() -> Iterator[responses.RequestsMock]:
    """Fake AIRisk at the HTTP layer; any unexpected call fails the test."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture(scope="session")
def demo_api() -> Iterator[DemoServer]:
    """The real demo AIRisk API on a free loopback port."""
    with DemoServer(create_demo_app(now=DEMO_NOW)) as server:
        yield server


@pytest.fixture(scope="module")
def demo() -> Iterator[tuple[DemoServer, Counting, Any]]:
    """The demo API at the real clock (\"today\", \"last 7 days\"), calls counted."""
    app = create_demo_app()
    counting = Counting(app)
    with DemoServer(counting) as server:
        yield server, counting, app.extensions["airisk_demo"]


@pytest.fixture
def reviewer(demo: Any, tmp_path: Path) -> Iterator[Browser]:
    """A dashboard on ``demo`` and a browser signed in to it as Alice."""
    with signed_in_reviewer(demo, tmp_path) as browser:
        yield browser


@pytest.fixture
def signed_in(client: FlaskClient, upstream: responses.RequestsMock) -> FlaskClient:
    """A client with a token entered; the check call is consumed."""
    check = upstream.get(
        LIST_URL,
        json=[],
        match=[
            matchers.query_param_matcher(
                {"results": "1", "skip": "0", "metadatasearch": ""}
            )
        ],
    )
    upstream.get(AGENTS_URL, json=AGENTS)
    enter_token(client, TOKEN)
    upstream.remove(check)
    return client
