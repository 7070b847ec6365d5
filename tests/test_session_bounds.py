"""Session floods (issue 17, items 2-4): what an anonymous or signed-in flood
can cost the store, and whom it can sign out."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from flask import Flask
from flask.testing import FlaskClient
from support import BASE, csrf_token, enter_token, make_app, page

TOKEN = "alice-token-0123456789abcdef"
LIST_URL = BASE + "/api/Chat/GetConversations"
AGENTS_URL = BASE + "/api/Chat/ListAgents"


@pytest.fixture
def accepting(upstream: responses.RequestsMock) -> responses.RequestsMock:
    """AIRisk accepts every token and has no conversations."""
    upstream.get(LIST_URL, json=[])
    upstream.get(AGENTS_URL, json=[])
    return upstream


def session_files(tmp_path: Path) -> list[Path]:
    """Return every file of the session store that holds a session."""
    root = tmp_path / "sessions"
    return [p for p in root.rglob("*") if p.is_file() and p.parent.name == "signed-in"]


def store_entries(tmp_path: Path) -> list[Path]:
    """Return every file under the session folder, bookkeeping included."""
    return [p for p in (tmp_path / "sessions").rglob("*") if p.is_file()]


class DirectoryScans:
    """Count directory listings (os.listdir / os.scandir) while installed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        listdir, scandir = os.listdir, os.scandir

        def counted_listdir(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return listdir(*args, **kwargs)

        def counted_scandir(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return scandir(*args, **kwargs)

        monkeypatch.setattr(os, "listdir", counted_listdir)
        monkeypatch.setattr(os, "scandir", counted_scandir)


@pytest.fixture
def scans(monkeypatch: pytest.MonkeyPatch) -> Iterator[DirectoryScans]:
    yield DirectoryScans(monkeypatch)


# -- item 2: anonymous pages keep nothing server-side ------------------------


def test_anonymous_pages_create_no_server_side_session(
    app: Flask, tmp_path: Path
) -> None:
    for path in ("/no-such-page", "/healthz", "/readyz", "/static/style.css"):
        for _ in range(20):
            app.test_client().get(path).close()
    form = app.test_client().get("/token")
    assert form.status_code == 200
    assert session_files(tmp_path) == []


def test_the_token_form_works_without_a_server_side_session(
    client: FlaskClient, accepting: responses.RequestsMock, tmp_path: Path
) -> None:
    token = csrf_token(client)
    assert session_files(tmp_path) == []
    response = client.post("/token", data={"csrf_token": token, "token": TOKEN})
    assert response.status_code == 303
    assert len(session_files(tmp_path)) == 1
    assert client.get("/conversations").status_code == 200


def test_a_failed_sign_in_keeps_nothing_server_side(
    client: FlaskClient, upstream: responses.RequestsMock, tmp_path: Path
) -> None:
    upstream.get(LIST_URL, status=401)
    for _ in range(5):
        assert enter_token(client, TOKEN).status_code == 401
    assert session_files(tmp_path) == []


def test_the_anonymous_form_token_is_bound_to_its_browser(
    app: Flask, accepting: responses.RequestsMock
) -> None:
    """Login CSRF: a form token taken from one browser fails in another."""
    attacker, victim = app.test_client(), app.test_client()
    stolen = csrf_token(attacker)
    victim.get("/token")
    response = victim.post("/token", data={"csrf_token": stolen, "token": TOKEN})
    assert response.status_code == 400
    assert "The form expired" in page(response).text


def test_an_anonymous_flood_costs_no_directory_scan_and_signs_no_one_out(
    tmp_path: Path, accepting: responses.RequestsMock, scans: DirectoryScans
) -> None:
    app = make_app(tmp_path, SESSION_MAX_SIGNED_IN=5)
    user = app.test_client()
    enter_token(user, TOKEN)
    scans.count = 0
    for i in range(300):
        visitor = app.test_client()
        visitor.get(f"/missing-{i}")
        visitor.get("/token")
    assert scans.count == 0, "no request lists the session folder"
    assert user.get("/conversations").status_code == 200
    assert len(session_files(tmp_path)) == 1


# -- item 3: the signed-in cap is per client ---------------------------------


def sign_in_from(app: Flask, address: str, forwarded: str | None = None) -> FlaskClient:
    """Sign in from ``address`` (optionally through a proxy that forwards)."""
    browser = app.test_client()
    browser.environ_base["REMOTE_ADDR"] = address
    if forwarded:
        browser.environ_base["HTTP_X_FORWARDED_FOR"] = forwarded
    assert enter_token(browser, TOKEN).status_code == 303
    return browser


def test_a_sign_in_flood_evicts_only_the_flooding_clients_sessions(
    tmp_path: Path, accepting: responses.RequestsMock, scans: DirectoryScans
) -> None:
    app = make_app(tmp_path, SESSION_MAX_SIGNED_IN=50, SESSION_MAX_PER_CLIENT=3)
    victim = sign_in_from(app, "192.0.2.10")
    scans.count = 0
    flood = [sign_in_from(app, "198.51.100.66") for _ in range(80)]
    assert scans.count == 0, "no sign-in lists the session folder"
    assert victim.get("/conversations").status_code == 200
    assert len(session_files(tmp_path)) == 1 + 3
    assert [b.get("/conversations").status_code for b in flood[-3:]] == [200] * 3
    assert flood[0].get("/conversations").status_code == 303, "its own oldest"


def test_an_ipv6_flood_counts_per_subnet(
    tmp_path: Path, accepting: responses.RequestsMock
) -> None:
    app = make_app(tmp_path, SESSION_MAX_PER_CLIENT=2)
    victim = sign_in_from(app, "2001:db8:1::1")
    for i in range(10):
        sign_in_from(app, f"2001:db8:2::{i + 1:x}")
    assert victim.get("/conversations").status_code == 200
    assert len(session_files(tmp_path)) == 1 + 2


def test_the_per_client_cap_honours_trusted_proxies_only(
    tmp_path: Path, accepting: responses.RequestsMock
) -> None:
    proxied = make_app(
        tmp_path / "proxied", TRUSTED_PROXIES=1, SESSION_MAX_PER_CLIENT=2
    )
    victim = sign_in_from(proxied, "10.0.0.1", forwarded="192.0.2.10")
    for _ in range(10):
        sign_in_from(proxied, "10.0.0.1", forwarded="198.51.100.66")
    assert victim.get("/conversations").status_code == 200, "clients told apart"
    direct = make_app(tmp_path / "direct", SESSION_MAX_PER_CLIENT=2)
    first = sign_in_from(direct, "198.51.100.66", forwarded="192.0.2.1")
    for i in range(10):
        # Without TRUSTED_PROXIES a forged X-Forwarded-For changes nothing.
        sign_in_from(direct, "198.51.100.66", forwarded=f"192.0.2.{i + 2}")
    assert first.get("/conversations").status_code == 303


def test_a_full_store_refuses_new_sign_ins_and_signs_no_one_out(
    tmp_path: Path, accepting: responses.RequestsMock
) -> None:
    app = make_app(tmp_path, SESSION_MAX_SIGNED_IN=3)
    users = [sign_in_from(app, f"192.0.2.{i}") for i in (1, 2, 3)]
    late = app.test_client()
    late.environ_base["REMOTE_ADDR"] = "192.0.2.4"
    response = enter_token(late, TOKEN)
    assert response.status_code == 503
    assert "as many people signed in" in page(response).text
    assert late.get("/conversations").status_code == 303
    assert [u.get("/conversations").status_code for u in users] == [200] * 3
    assert len(session_files(tmp_path)) == 3
    # Once someone signs out, the form on the refusal page works as it is.
    users[0].post("/logout", data={"csrf_token": csrf_token(users[0], "/token")})
    theme_form, token_form = page(response).find_all("input", name="csrf_token")
    assert theme_form["value"] == token_form["value"]
    again = late.post(
        "/token", data={"csrf_token": token_form["value"], "token": TOKEN}
    )
    assert again.status_code == 303


_PROCESS_SCRIPT = """
import sys
from datetime import timedelta
from webapp.sessions import FileSessions, SessionLimit
store = FileSessions(
    sys.argv[1], idle=timedelta(minutes=30), absolute=timedelta(hours=8),
    max_signed_in=100, max_per_client=1000, name_key=b"k" * 32,
)
made = 0
for i in range(40):
    try:
        store._create(store.new_sid(), {"t": "x", "c": 0, "s": 0}, 600, sys.argv[2])
        made += 1
    except SessionLimit:
        pass
print(made)
"""


@pytest.mark.slow
def test_the_count_is_exact_under_several_processes(tmp_path: Path) -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    directory = str(tmp_path / "sessions")
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _PROCESS_SCRIPT, directory, f"client-{n}"],
            cwd=root,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    made = sum(int(w.communicate(timeout=120)[0]) for w in workers)
    assert made == 100, "160 attempts, a cap of 100"
    assert len(session_files(tmp_path)) == 100
    state = json.loads((tmp_path / "sessions" / "state.json").read_bytes())
    assert state["n"] == 100


# -- item 3 / issue 14 item 3: a token counts only once AIRisk accepted it ----


@pytest.mark.parametrize(
    ("reply", "status", "words"),
    [
        ({"body": requests.ReadTimeout("slow")}, 504, "AIRisk did not answer"),
        ({"body": requests.ConnectionError("refused")}, 503, "AIRisk did not answer"),
        ({"status": 500}, 502, "AIRisk did not answer"),
        ({"status": 503}, 503, "AIRisk did not answer"),
        ({"status": 429}, 429, "slow down"),
        ({"status": 403}, 403, "application (generic) token"),
        ({"status": 404}, 502, "AIRISK_BASE_URL"),
    ],
)
def test_a_token_airisk_did_not_accept_never_signs_in(
    client: FlaskClient,
    upstream: responses.RequestsMock,
    tmp_path: Path,
    reply: dict[str, Any],
    status: int,
    words: str,
) -> None:
    upstream.get(LIST_URL, **reply)
    response = enter_token(client, "made-up-string-0123456789")
    assert response.status_code == status
    doc = page(response)
    assert words in doc.text
    assert doc.find_all("input", name="token"), "the token page, to try again"
    assert session_files(tmp_path) == []
    assert client.get("/conversations").status_code == 303


# -- item 4: the same bounds with Redis sessions (a real redis-server) --------


@pytest.fixture(scope="module")
def session_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from test_scale_out import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("session-redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_app(tmp_path: Path, session_redis: Any) -> Iterator[Any]:
    """A dashboard whose sessions and cache live in a freshly emptied Redis."""
    store = session_redis.client()
    store.flushall()
    store.config_set("maxmemory", 0)

    def build(**settings: Any) -> Flask:
        return make_app(
            tmp_path,
            SESSION_BACKEND="redis",
            CACHE_BACKEND="redis",
            REDIS_URL=session_redis.url,
            **settings,
        )

    yield build, store
    store.config_set("maxmemory", 0)


def session_keys(store: Any) -> list[bytes]:
    return [k for k in store.scan_iter("session:*")]


@pytest.mark.slow
def test_redis_anonymous_pages_write_nothing(
    redis_app: Any, accepting: responses.RequestsMock
) -> None:
    build, store = redis_app
    app = build()
    user = sign_in_from(app, "192.0.2.1")
    before = store.dbsize()
    for i in range(200):
        visitor = app.test_client()
        visitor.get(f"/missing-{i}")
        visitor.get("/token")
    assert store.dbsize() == before
    assert user.get("/conversations").status_code == 200


@pytest.mark.slow
def test_redis_sign_in_flood_evicts_only_the_flooding_clients_sessions(
    redis_app: Any, accepting: responses.RequestsMock
) -> None:
    build, store = redis_app
    app = build(SESSION_MAX_SIGNED_IN=50, SESSION_MAX_PER_CLIENT=3)
    victim = sign_in_from(app, "192.0.2.10")
    flood = [sign_in_from(app, "198.51.100.66") for _ in range(40)]
    assert victim.get("/conversations").status_code == 200
    assert len(session_keys(store)) == 1 + 3
    assert flood[-1].get("/conversations").status_code == 200
    assert flood[0].get("/conversations").status_code == 303


@pytest.mark.slow
def test_redis_full_store_refuses_new_sign_ins_and_signs_no_one_out(
    redis_app: Any, accepting: responses.RequestsMock
) -> None:
    build, store = redis_app
    app = build(SESSION_MAX_SIGNED_IN=3)
    users = [sign_in_from(app, f"192.0.2.{i}") for i in (1, 2, 3)]
    late = app.test_client()
    late.environ_base["REMOTE_ADDR"] = "192.0.2.4"
    response = enter_token(late, TOKEN)
    assert response.status_code == 503
    assert "as many people signed in" in page(response).text
    assert [u.get("/conversations").status_code for u in users] == [200] * 3
    assert len(session_keys(store)) == 3


@pytest.mark.slow
def test_redis_sign_out_scans_no_keys(
    redis_app: Any, accepting: responses.RequestsMock
) -> None:
    build, store = redis_app
    app = build()
    user = sign_in_from(app, "192.0.2.1")
    user.get("/conversations")
    store.mset({f"unrelated:{i}": b"x" for i in range(2000)})
    store.config_resetstat()
    response = user.post("/logout", data={"csrf_token": csrf_token(user, "/token")})
    assert response.status_code == 303
    stats = store.info("commandstats")
    assert "cmdstat_scan" not in stats and "cmdstat_keys" not in stats
    assert session_keys(store) == []
    # What the token read is gone; only the sign-out mark that late scans look
    # for (webapp/airisk/service.py) remains, and it expires by itself.
    left = list(store.scan_iter("airisk-cache:*"))
    assert all(b"-signed-out" in key for key in left), "cache dropped"
    assert all(store.ttl(key) > 0 for key in left)
    assert user.get("/conversations").status_code == 303


@pytest.mark.slow
def test_readyz_fails_while_redis_refuses_writes(
    redis_app: Any, accepting: responses.RequestsMock
) -> None:
    build, store = redis_app
    app = build()
    client = app.test_client()
    assert client.get("/readyz").status_code == 200
    # At its memory limit with the noeviction policy, Redis answers PING
    # and refuses every write: no one could sign in.
    store.config_set("maxmemory-policy", "noeviction")
    store.config_set("maxmemory", 1)
    try:
        assert client.get("/readyz").status_code == 503
        response = enter_token(app.test_client(), TOKEN)
        assert response.status_code == 503
        assert "session store" in page(response).text
    finally:
        store.config_set("maxmemory", 0)
    assert client.get("/readyz").status_code == 200
    assert enter_token(app.test_client(), TOKEN).status_code == 303
