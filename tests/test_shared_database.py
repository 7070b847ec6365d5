"""Two gunicorn dashboards sharing one real PostgreSQL and one real Redis:
what one instance records, the other shows, and concurrent changes of one
conversation from both keep both history rows and one unbroken trail."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from support import DEMO_NOW, Browser, Page
from support.postgres import PostgresServer
from support.processes import Dashboard, RedisServer, environment, on, sign_in

from webapp.demo_api import create_demo_app
from webapp.demo_api.server import DemoServer
from webapp.store import Store, trail
from webapp.store.reviews import history

pytestmark = pytest.mark.slow

DETAIL = re.compile(r'href="/conversations/([A-Za-z0-9_-]+)\?')


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


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture
def shared(
    tmp_path: Path,
    redis_server: RedisServer,
    upstream: Any,
    postgres: PostgresServer,
) -> Iterator[tuple[Dashboard, Dashboard, Store]]:
    database = postgres.new_database()
    env = environment(
        tmp_path,
        AIRISK_BASE_URL=upstream,
        SESSION_BACKEND="redis",
        CACHE_BACKEND="redis",
        REDIS_URL=redis_server.url,
        DATABASE_URL=database,
    )
    redis_server.client().flushall()
    # Each instance runs the migrations on start; the second finds them done.
    a = Dashboard(env, tmp_path).start()
    b = Dashboard(env, tmp_path).start()
    from webapp.store import database_url

    store = Store(database_url(database, str(tmp_path)))
    yield a, b, store
    store.dispose()
    a.stop()
    b.stop()


def set_state(browser: Browser, cid: str, state: str) -> requests.Response:
    detail = browser.get(f"/conversations/{cid}")
    return browser.post(
        f"/conversations/{cid}/review",
        {"csrf_token": browser.form_token(detail), "state": state},
        allow_redirects=False,
    )


def test_a_state_set_on_one_instance_shows_on_the_other(
    shared: tuple[Dashboard, Dashboard, Store],
) -> None:
    a, b, _ = shared
    browser_a = Browser(a.url)
    listing = sign_in(browser_a)
    cid = DETAIL.findall(listing.text)[0]
    assert set_state(browser_a, cid, "escalated").status_code == 303
    browser_b = on(b, browser_a)
    shown = Page(browser_b.get(f"/conversations/{cid}").text).text
    assert "State: escalated" in shown
    assert "new → escalated" in shown


def test_concurrent_changes_from_both_instances_keep_both_rows(
    shared: tuple[Dashboard, Dashboard, Store],
) -> None:
    a, b, store = shared
    browser_a = Browser(a.url)
    listing = sign_in(browser_a)
    browser_b = on(b, browser_a)
    cids = DETAIL.findall(listing.text)[:5]
    barrier = threading.Barrier(2)
    answers: list[int] = []

    def run(browser: Browser, state: str) -> None:
        for cid in cids:
            detail = browser.get(f"/conversations/{cid}")
            token = browser.form_token(detail)
            barrier.wait()
            answers.append(
                browser.post(
                    f"/conversations/{cid}/review",
                    {"csrf_token": token, "state": state},
                    allow_redirects=False,
                ).status_code
            )

    threads = [
        threading.Thread(target=run, args=(browser_a, "escalated")),
        threading.Thread(target=run, args=(browser_b, "cleared")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [303] * 10
    user = browser_a.get(f"/conversations/{cids[0]}?format=json").json()["userId"]
    for cid in cids:
        steps = history(store, (user, cid))
        assert len(steps) == 2, cid
        assert steps[0].from_state == "new"
        assert steps[1].from_state == steps[0].to_state
        assert {steps[0].to_state, steps[1].to_state} == {"escalated", "cleared"}
    verdict = trail.verify(store)
    assert verdict.ok, verdict.problem
