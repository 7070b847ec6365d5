"""The Redis cache against a real redis-server: what a copy of Redis shows,
and what a hung Redis costs a page."""

from __future__ import annotations

import hashlib
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from support import ALICE, DEMO_NOW, enter_token, make_app, page
from support.html import row_ids
from support.processes import RedisServer

from webapp.demo_api import create_demo_app
from webapp.demo_api.server import DemoServer

# Real servers and processes: left out of the fast tier (-m 'not slow').
pytestmark = pytest.mark.slow

BOB = "demo-bob"


@pytest.fixture(scope="module")
def upstream() -> Iterator[DemoServer]:
    with DemoServer(create_demo_app(now=DEMO_NOW)) as server:
        yield server


@pytest.fixture
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis-cache"))
    server.start()
    yield server
    server.stop()


def cached_app(tmp_path: Path, upstream: DemoServer, redis: RedisServer) -> Flask:
    """A dashboard with filesystem sessions and the upstream cache in Redis."""
    return make_app(
        tmp_path,
        AIRISK_BASE_URL=upstream.url,
        CACHE_BACKEND="redis",
        REDIS_URL=redis.url,
    )


def raw_store(redis: RedisServer) -> dict[bytes, bytes]:
    """Return every key and value in Redis, as bytes."""
    store = redis.client()
    return {key: store.get(key) or b"" for key in store.scan_iter("*")}


def test_a_copy_of_redis_shows_no_token_hash_and_no_text(
    tmp_path: Path, upstream: DemoServer, redis_server: RedisServer
) -> None:
    app = cached_app(tmp_path, upstream, redis_server)
    client = app.test_client()
    enter_token(client, ALICE)
    listing = client.get("/conversations")
    first = "/conversations/" + sorted(row_ids(listing))[0]
    conversation = page(client.get(first))
    store = raw_store(redis_server)
    assert len(store) >= 3, "agents, the list page and the conversation are cached"
    # What the pages showed, and what a reader of Redis would look for.
    shown = [
        text
        for text in conversation.text_parts + page(listing).text_parts
        if len(text.strip()) >= 12
    ]
    assert len(shown) > 10
    digest = hashlib.sha256(ALICE.encode()).hexdigest()
    for key, value in store.items():
        assert digest.encode() not in key and ALICE.encode() not in key
        assert ALICE.encode() not in value
        for text in shown:
            assert text.strip().encode() not in value, (key, text)
        assert not value.startswith(b"\x80"), "no pickle in plain sight"
    # Served from the cache (no second fetch needed), readable by the app.
    assert client.get(first).status_code == 200


def test_cache_keys_depend_on_the_secret_key_and_the_token(
    tmp_path: Path, upstream: DemoServer, redis_server: RedisServer
) -> None:
    def keys_after(secret: str, token: str) -> set[bytes]:
        store = redis_server.client()
        store.flushdb()
        app = make_app(
            tmp_path / secret,
            AIRISK_BASE_URL=upstream.url,
            CACHE_BACKEND="redis",
            REDIS_URL=redis_server.url,
            SECRET_KEY=secret,
        )
        client = app.test_client()
        enter_token(client, token)
        client.get("/conversations")
        return set(store.scan_iter("*"))

    first = keys_after("first-secret-key-0123456789abcdef", ALICE)
    again = keys_after("first-secret-key-0123456789abcdef", ALICE)
    other_key = keys_after("other-secret-key-0123456789abcdef", ALICE)
    other_token = keys_after("first-secret-key-0123456789abcdef", BOB)
    assert first and first == again, "instances with one SECRET_KEY share entries"
    assert not first & other_key
    assert not first & other_token


def test_a_value_forged_in_redis_is_dropped_not_served(
    tmp_path: Path, upstream: DemoServer, redis_server: RedisServer
) -> None:
    app = cached_app(tmp_path, upstream, redis_server)
    client = app.test_client()
    enter_token(client, ALICE)
    before = page(client.get("/conversations")).text
    store = redis_server.client()
    for key in store.scan_iter("*"):
        value = store.get(key) or b""
        # A flipped byte: the ciphertext no longer authenticates.
        store.set(key, value[:-5] + bytes([value[-5] ^ 1]) + value[-4:])
    after = client.get("/conversations")
    assert after.status_code == 200
    assert page(after).text.split("Fetched")[0] == before.split("Fetched")[0]


def test_a_hung_cache_redis_is_skipped_and_readiness_says_so(
    tmp_path: Path, upstream: DemoServer, redis_server: RedisServer
) -> None:
    app = cached_app(tmp_path, upstream, redis_server)
    client = app.test_client()
    enter_token(client, ALICE)
    assert client.get("/conversations").status_code == 200
    assert client.get("/readyz").status_code == 200
    process: Any = redis_server.process
    process.send_signal(signal.SIGSTOP)
    try:
        # Each view still answers with its data; before the short timeouts a
        # frozen Redis cost every view 8-12 s (2 s timeouts, 3 retries).
        for path in ("/conversations?size=50", "/conversations?page=2", "/insights"):
            started = time.monotonic()
            response = client.get(path)
            elapsed = time.monotonic() - started
            assert response.status_code == 200, path
            assert path == "/insights" or row_ids(response), path
            assert elapsed < 3, (path, elapsed)
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.get_json() == {"status": "unavailable"}
    finally:
        process.send_signal(signal.SIGCONT)
    assert client.get("/readyz").status_code == 200
    # Answering again, the cache is used again: a new page lands in Redis.
    before = len(raw_store(redis_server))
    assert client.get("/conversations?page=3").status_code == 200
    assert len(raw_store(redis_server)) > before
