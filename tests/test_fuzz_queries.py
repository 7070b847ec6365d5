"""Crafted query strings never make a 500: known cases, then a bounded fuzz.

Signed in as ``demo-hostile`` against the real demo API on loopback, every GET
route gets every query parameter it reads (and keys that only ``url_for``
knows: ``endpoint``, ``_external``, ``_scheme``, ``_anchor``, ``_method``),
with values hypothesis draws from text, integers, dates at the edges of the
calendar and Unicode digits that ``str.isdigit`` accepts but ``int`` refuses.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import enter_token, make_app

from webapp.demo_api.data import Dataset
from webapp.demo_api.server import DemoServer

HOSTILE = "demo-hostile"

#: Query keys the dashboard reads, plus url_for's own keyword arguments.
#: (``refresh`` and ``partial`` are left out: they start a whole new scan or
#: wait for one by design, which would only make the fuzz slow.)
KEYS = (
    "page", "size", "agent", "tag", "q", "from", "to", "flagged", "attachments",
    "min_tokens", "min_cost", "sort", "format", "find", "highlight", "n", "at",
    "start", "system", "days", "chart", "next", "reason", "endpoint",
    "_external", "_scheme", "_anchor", "_method", "cid", "fmt", "scope",
    "window", "download",
)  # fmt: skip
EDGE_VALUES = (
    "", "0", "-1", "1", "1e309", "nan", "³", "²³", "٣", "１２", "0001-01-01",
    "9999-12-31", "0001-01-02", "9999-12-30", "2026-02-30", "x" * 300, "\x00",
    "<script>", "created", "json", "on", "//evil.example", "a..b", "range",
    "window", "402-601", "5-2",
)  # fmt: skip
#: ``from=`` of a conversation page is itself a query string: nest one.
NESTED = st.dictionaries(
    st.sampled_from(KEYS), st.sampled_from(EDGE_VALUES), max_size=4
).map(urlencode)
#: The shapes of the bugs found so far, drawn often.
NASTY = ("³", "٣", "0001-01-01", "9999-12-31", "endpoint=x", "_scheme=https")
VALUES = st.one_of(
    st.sampled_from(NASTY),
    st.sampled_from(EDGE_VALUES),
    st.text(max_size=20),
    st.integers(-(10**20), 10**20).map(str),
    st.dates().map(lambda d: d.isoformat()),
    NESTED,
)
# Each key present or not on its own: a dictionary of a few keys drawn from
# thirty almost never holds the one a route reads.
QUERIES = st.fixed_dictionaries({}, optional=dict.fromkeys(KEYS, VALUES))


@pytest.fixture(scope="module")
def client(
    tmp_path_factory: pytest.TempPathFactory, demo_api: DemoServer
) -> Iterator[FlaskClient]:
    app = make_app(tmp_path_factory.mktemp("fuzz"), AIRISK_BASE_URL=demo_api.url)
    client = app.test_client()
    assert enter_token(client, HOSTILE).status_code in (302, 303)
    yield client


#: One concrete path per GET route but static files; "{cid}" is filled in.
PATHS = (
    "/",
    "/token",
    "/healthz",
    "/readyz",
    "/verify",
    "/.well-known/airisk-viewer-keys.json",
    "/conversations",
    "/conversations/export.csv",
    "/conversations/export.json",
    "/conversations/{cid}",
    "/conversations/{cid}/export.md",
    "/conversations/{cid}/export.json",
    "/conversations/{cid}/export.html",
    "/insights",
    "/insights.json",
    "/insights/conversations.csv",
    "/insights/heatmap.csv",
    "/review",
    "/audit",
    "/audit/export.csv",
)


@pytest.fixture(scope="module")
def cid(demo_api: DemoServer) -> str:
    """Return the id of a short hostile conversation."""
    data: Dataset = demo_api.app.extensions["airisk_demo"]
    user_id = data.user_id_for(HOSTILE)
    assert user_id is not None
    # The fuzz is about the query, not Markdown bombs.
    return str(next(c["id"] for c in data.users[user_id] if len(c["messages"]) < 20))


def test_every_get_route_is_fuzzed(client: FlaskClient) -> None:
    app: Any = client.application
    rules = {r.rule for r in app.url_map.iter_rules() if "GET" in (r.methods or ())}
    covered = {app.url_map.bind("localhost").match(p.format(cid="c"))[0] for p in PATHS}
    endpoints = {r.endpoint for r in app.url_map.iter_rules() if r.rule in rules}
    assert endpoints - covered == {"static"}


def get(client: FlaskClient, path: str, query: dict[str, str] | str) -> int:
    """GET ``path`` with ``query`` and read the whole (maybe streamed) body."""
    qs = query if isinstance(query, str) else urlencode(query)
    response = client.get(f"{path}?{qs}")
    response.get_data()
    return response.status_code


@pytest.mark.parametrize(
    "query",
    [
        # Keys inside from= must not reach url_for as keyword arguments.
        "from=" + urlencode({"from": "endpoint=x"})[5:],
        "from=" + urlencode({"f": "_scheme=https"})[2:],
        "from=" + urlencode({"f": "_external=1&_method=POST"})[2:],
        "from=" + urlencode({"f": "endpoint=x&page=2"})[2:],
        # Unicode digits: str.isdigit() says yes, int() says no.
        "n=%C2%B3",
        "n=%D9%A3",
        # Years at the edge of the calendar.
        "from=" + urlencode({"f": "to=9999-12-31"})[2:],
        "from=" + urlencode({"f": "from=0001-01-01&to=0001-01-01"})[2:],
    ],
)
def test_crafted_conversation_queries(
    client: FlaskClient, cid: str, query: str
) -> None:
    assert get(client, f"/conversations/{cid}", query) < 500


@pytest.mark.parametrize(
    "query",
    [
        "days=%C2%B3",
        "days=%EF%BC%99%EF%BC%90",
        "to=0001-01-01",
        "to=0001-01-05&from=0001-01-01",
        "from=9999-12-31",
        "from=9999-12-01&to=9999-12-31",
        "to=9999-12-31",
        "endpoint=x",
        "_scheme=https",
        "_external=1",
        "_method=POST",
    ],
)
@pytest.mark.parametrize(
    "path",
    [
        "/insights",
        "/insights.json",
        "/insights/conversations.csv",
        "/conversations",
        "/conversations/export.csv",
        "/conversations/export.json",
    ],
)
def test_crafted_list_and_insights_queries(
    client: FlaskClient, path: str, query: str
) -> None:
    assert get(client, path, query) < 500


@pytest.mark.slow
@pytest.mark.parametrize("path", PATHS)
@settings(
    max_examples=60,
    deadline=None,
    database=None,  # no example database: every run draws afresh
    suppress_health_check=[HealthCheck.too_slow],
)
@given(query=QUERIES)
def test_fuzzed_queries_never_fail(
    client: FlaskClient, cid: str, path: str, query: dict[str, Any]
) -> None:
    url = path.format(cid=cid)
    assert get(client, url, query) < 500, f"{url}?{urlencode(query)}"
