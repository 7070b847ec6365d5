"""Production and scale-out, with real processes: gunicorn dashboards sharing a
real redis-server, the demo AIRisk API on loopback, and the session store
going away and coming back."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from support import ALICE, DEMO_NOW, Browser, Page, make_app
from support.http import conversation_links
from support.processes import (
    PASSWORD,
    SECRET,
    Dashboard,
    RedisServer,
    environment,
    free_port,
    on,
    sign_in,
)

from webapp.demo_api import create_demo_app
from webapp.demo_api.server import DemoServer

# Real servers and processes: left out of the fast tier (-m 'not slow').
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    """The demo AIRisk API on a loopback port, for the dashboard processes."""
    with DemoServer(create_demo_app(now=DEMO_NOW)) as server:
        yield server.url


@pytest.fixture
def pair(
    tmp_path: Path, redis_server: RedisServer, upstream: Any
) -> Iterator[tuple[Dashboard, Dashboard]]:
    env = environment(
        tmp_path,
        AIRISK_BASE_URL=upstream,
        SESSION_BACKEND="redis",
        CACHE_BACKEND="redis",
        REDIS_URL=redis_server.url,
        LOG_FORMAT="json",
    )
    redis_server.client().flushall()  # each test starts from an empty store
    a = Dashboard(env, tmp_path).start()
    b = Dashboard(env, tmp_path).start()
    yield a, b
    a.stop()
    b.stop()


@pytest.mark.parametrize(("trusted_proxies", "https"), [("0", False), ("1", True)])
def test_gunicorn_believes_forwarded_headers_only_from_trusted_proxies(
    tmp_path: Path, upstream: Any, trusted_proxies: str, https: bool
) -> None:
    env = environment(
        tmp_path, AIRISK_BASE_URL=upstream, TRUSTED_PROXIES=trusted_proxies
    )
    dashboard = Dashboard(env, tmp_path, threads=1).start()
    try:
        response = requests.get(
            dashboard.url + "/healthz",
            headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "192.0.2.7"},
            timeout=10,
        )
    finally:
        dashboard.stop()
    assert response.status_code == 200
    assert ("Strict-Transport-Security" in response.headers) is https


def test_a_session_works_on_every_instance(pair: tuple[Dashboard, Dashboard]) -> None:
    a, b = pair
    browser_a = Browser(a.url)
    assert sign_in(browser_a).status_code == 200
    browser_b = on(b, browser_a)
    listing = browser_b.get("/conversations")
    assert urlsplit_path(listing) == "/conversations"
    assert len(conversation_links(listing)) == 20
    # Signing out on B signs out on A.
    browser_b.post("/logout", {"csrf_token": browser_b.form_token(listing)})
    assert urlsplit_path(browser_a.get("/conversations")) == "/token"


def urlsplit_path(response: requests.Response) -> str:
    return requests.utils.urlparse(response.url).path


def test_idle_timeout_recorded_on_one_instance_holds_on_the_other(
    pair: tuple[Dashboard, Dashboard], redis_server: RedisServer
) -> None:
    a, b = pair
    browser_a = Browser(a.url)
    sign_in(browser_a)
    store = redis_server.client()
    keys = store.scan_iter("session:*")
    (key,) = [k for k in keys if b'"t"' in (store.get(k) or b"")]
    ttl = store.ttl(key)
    assert 0 < ttl <= 30 * 60, "the store expires an idle session by itself"
    record = json.loads(store.get(key) or b"{}")
    assert "alice" not in json.dumps(record), "the token is stored encrypted"
    record["s"] -= 31 * 60  # last seen 31 minutes ago
    store.set(key, json.dumps(record), ex=ttl)
    response = on(b, browser_a).get("/conversations?page=2")
    assert urlsplit_path(response) == "/token"
    assert "reason=idle" in response.url


def test_a_forged_pickle_in_redis_is_never_unpickled(
    pair: tuple[Dashboard, Dashboard], redis_server: RedisServer, tmp_path: Path
) -> None:
    import pickle

    a, _ = pair
    browser = Browser(a.url)
    sign_in(browser)
    store = redis_server.client()
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self) -> Any:
            return (open, (str(marker), "w"))

    # Every session record, not the store's own bookkeeping (its index).
    for key in store.scan_iter("session:*"):
        store.set(key, pickle.dumps(Exploit()))
    assert urlsplit_path(browser.get("/conversations")) == "/token"
    assert urlsplit_path(browser.get("/conversations?size=50")) == "/token"
    assert not marker.exists()


def test_caches_never_leak_between_tokens_across_instances(
    pair: tuple[Dashboard, Dashboard], upstream: Any
) -> None:
    a, b = pair
    alice_a, bob_b = Browser(a.url), Browser(b.url)
    sign_in(alice_a, ALICE)
    sign_in(bob_b, "demo-bob")
    alice_b, bob_a = on(b, alice_a), on(a, bob_b)
    alice_ids: set[str] = set()
    bob_ids: set[str] = set()
    for _ in range(2):
        for browser, seen in (
            (alice_a, alice_ids),
            (bob_b, bob_ids),
            (alice_b, alice_ids),
            (bob_a, bob_ids),
        ):
            seen.update(conversation_links(browser.get("/conversations?size=100")))
    assert alice_ids and bob_ids
    assert not alice_ids & bob_ids


def test_sessions_survive_a_restart_redis(
    tmp_path: Path, redis_server: RedisServer, upstream: Any
) -> None:
    env = environment(
        tmp_path,
        AIRISK_BASE_URL=upstream,
        SESSION_BACKEND="redis",
        REDIS_URL=redis_server.url,
    )
    first = Dashboard(env, tmp_path).start()
    browser = Browser(first.url)
    sign_in(browser)
    first.stop()
    second = Dashboard(env, tmp_path).start()
    try:
        again = on(second, browser).get("/conversations")
        assert urlsplit_path(again) == "/conversations"
    finally:
        second.stop()


def test_sessions_survive_a_restart_filesystem(tmp_path: Path, upstream: Any) -> None:
    config = {"AIRISK_BASE_URL": upstream, "SECRET_KEY": SECRET}
    with DemoServer(make_app(tmp_path, **config)) as first:
        browser = Browser(first.url)
        sign_in(browser)
    with DemoServer(make_app(tmp_path, **config)) as second:
        again = on(second, browser).get("/conversations")  # type: ignore[arg-type]
        assert urlsplit_path(again) == "/conversations"


def test_redis_down_is_a_503_page_and_recovery_needs_no_restart(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, upstream: Any
) -> None:
    store = RedisServer(tmp_path_factory.mktemp("redis-down"))
    store.start()
    env = environment(
        tmp_path,
        AIRISK_BASE_URL=upstream,
        SESSION_BACKEND="redis",
        CACHE_BACKEND="redis",
        REDIS_URL=store.url,
    )
    dashboard = Dashboard(env, tmp_path).start()
    try:
        browser = Browser(dashboard.url)
        sign_in(browser)
        # Unresponsive (stopped), then gone (killed).
        assert store.process
        store.process.send_signal(signal.SIGSTOP)
        frozen = browser.get("/conversations")
        assert frozen.status_code == 503
        assert "session store" in Page(frozen.text).text
        assert browser.get("/healthz").status_code == 200
        assert browser.get("/readyz").status_code == 503
        store.process.send_signal(signal.SIGCONT)
        back = browser.get("/conversations")
        assert back.status_code == 200, "same session, no restart"
        store.stop()
        down = browser.get("/conversations")
        assert down.status_code == 503 and "Traceback" not in down.text
        store.start()  # empty: the session is gone, the dashboard recovers
        recovered = browser.get("/conversations")
        assert urlsplit_path(recovered) == "/token"
        assert sign_in(browser).status_code == 200
        assert browser.get("/readyz").status_code == 200
    finally:
        output = dashboard.stop()
        store.stop()
    assert "Traceback" not in output


def test_health_endpoints_need_no_token_and_reveal_nothing(
    pair: tuple[Dashboard, Dashboard],
) -> None:
    a, _ = pair
    for path in ("/healthz", "/readyz"):
        response = requests.get(a.url + path, timeout=10)
        assert response.status_code == 200
        assert set(response.json()) == {"status"}
        assert "redis" not in response.text.lower() and SECRET not in response.text


@pytest.fixture
def keep_alive_upstream() -> Iterator[str]:
    """The demo API under gunicorn (werkzeug's server closes every connection),
    counting accepted connections; see bench/upstream.py."""
    root = Path(__file__).resolve().parent.parent
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.upstream", "--port", "0", "--latency-ms", "0"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout
    port = json.loads(process.stdout.readline())["port"]
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.communicate(timeout=20)


def test_page_views_reuse_upstream_connections(
    tmp_path: Path, keep_alive_upstream: str
) -> None:
    url = keep_alive_upstream
    env = environment(
        tmp_path, AIRISK_BASE_URL=url, AIRISK_CACHE_TTL="0", AIRISK_AGENTS_TTL="0"
    )
    dashboard = Dashboard(env, tmp_path, threads=4).start()
    try:
        browser = Browser(dashboard.url)
        sign_in(browser)
        requests.get(url + "/_bench/reset", timeout=10)
        for _ in range(200):
            assert browser.get("/conversations").status_code == 200
        stats = requests.get(url + "/_bench/stats", timeout=10).json()
    finally:
        dashboard.stop()
    # 200 views = 400 AIRisk calls (agents + page, cache off), over at most
    # one kept-alive connection per worker thread.
    assert sum(stats["requests"].values()) >= 400
    assert stats["connections"] <= 4, stats


def test_one_json_log_line_per_request_without_secrets(
    pair: tuple[Dashboard, Dashboard],
) -> None:
    a, b = pair
    browser = Browser(a.url)
    sign_in(browser)
    browser.get(
        "/conversations?q=secret-search-term&page=2",
        headers={"X-Request-ID": "trace-123"},
    )
    cookie = browser.http.cookies.get("session") or ""
    output = a.stop() + b.stop()
    lines = [
        json.loads(line)
        for line in output.splitlines()
        if line.startswith("{") and '"webapp.request"' in line
    ]
    traced = [line for line in lines if line["request_id"] == "trace-123"]
    assert len(traced) == 1
    entry = traced[0]
    assert entry["method"] == "GET" and entry["status"] == 200
    assert entry["path"].startswith("/conversations?") and "page=2" in entry["path"]
    assert "secret-search-term" not in output
    assert entry["upstream_calls"] >= 1 and entry["duration_ms"] >= 0
    assert ALICE not in output
    assert cookie and cookie not in output
    assert not re.search(r"Traceback", output)


def test_serve_refuses_to_start_without_a_real_secret_key(tmp_path: Path) -> None:
    for key in (None, "short"):
        env = environment(tmp_path)
        env.pop("SECRET_KEY")
        if key:
            env["SECRET_KEY"] = key
        result = subprocess.run(
            [sys.executable, "-m", "webapp.cli", "serve", "--port", str(free_port())],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2
        assert "SECRET_KEY" in result.stderr and "Traceback" not in result.stderr


def test_sign_out_drops_the_tokens_cache_in_redis(
    pair: tuple[Dashboard, Dashboard], redis_server: RedisServer
) -> None:
    from webapp.airisk.cache import keyed_name
    from webapp.sessions import derive_key

    a, b = pair
    browser = Browser(a.url)
    sign_in(browser)
    browser.get("/conversations")
    digest = keyed_name(derive_key(SECRET, "cache key names"), ALICE)
    store = redis_server.client()
    assert list(store.scan_iter(f"airisk-cache:{digest}:*")), "cached in Redis"
    other = on(b, browser)
    listing = other.get("/conversations")
    other.post("/logout", {"csrf_token": other.form_token(listing)})
    assert not list(store.scan_iter(f"airisk-cache:{digest}:*"))


def _tls_files(directory: Path) -> dict[str, Path]:
    """Write a throwaway CA and a server certificate for 127.0.0.1."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    later = now + datetime.timedelta(days=1)
    ca_key, server_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(later)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(2)
        .not_valid_before(now)
        .not_valid_after(later)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = {
        "ca": directory / "ca.pem",
        "cert": directory / "server.pem",
        "key": directory / "server.key",
    }
    files["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files["cert"].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    files["key"].write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


def test_sessions_and_cache_over_tls_with_a_password(
    tmp_path: Path, upstream: Any
) -> None:
    server = RedisServer(tmp_path, tls=_tls_files(tmp_path))
    server.start()
    try:
        url = server.url
        app = make_app(
            tmp_path,
            AIRISK_BASE_URL=upstream,
            SESSION_BACKEND="redis",
            CACHE_BACKEND="redis",
            REDIS_URL=url,
        )
        with DemoServer(app) as dashboard:
            browser = Browser(dashboard.url)
            assert sign_in(browser).status_code == 200
            assert browser.get("/readyz").status_code == 200
        store = redis.Redis.from_url(url)
        keys = [k.decode() for k in store.scan_iter("*")]
        assert any(k.startswith("session:") for k in keys)
        assert any(k.startswith("airisk-cache:") for k in keys)
        # The certificate is verified: without the CA, no connection.
        unverified = redis.Redis.from_url(
            f"rediss://:{PASSWORD}@127.0.0.1:{server.port}/0", socket_timeout=2
        )
        with pytest.raises(redis.ConnectionError):
            unverified.ping()
    finally:
        server.stop()
