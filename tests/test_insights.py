"""Insights end to end: the real demo AIRisk API and the dashboard on loopback.

Every number is checked against an independent count over the demo dataset's
raw JSON (the wire shape the API serves), not against our own parsing; a WSGI
wrapper counts the calls that reach the demo API.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import responses
from flask.testing import FlaskClient
from responses import matchers
from support import ALICE, Browser, Page, enter_token, make_app, signed_in_reviewer
from support.exports import csv_data, unsigned
from support.fake_airisk import AGENTS, AGENTS_URL, LIST_URL, TOKEN, summary
from support.http import all_result_ids, follow_scan

from webapp.demo_api.server import DemoServer
from webapp.web.templating import money, number

TOP_N = 5


@pytest.fixture
def alice(demo: Any) -> list[dict[str, Any]]:
    dataset = demo[2]
    return list(dataset.summaries[dataset.user_id_for(ALICE)])


# -- the independent computation, straight from the raw JSON ------------------------


def raw_cost(item: dict[str, Any]) -> float | None:
    value = item["currentCost"]
    if isinstance(value, dict):
        value = value.get("totalCost")
    return float(value) if isinstance(value, int | float) else None


def raw_day(item: dict[str, Any]) -> date:
    # The demo writes lastUpdated as UTC without a zone: the day is the prefix.
    return date.fromisoformat(item["lastUpdated"][:10])


def in_range(
    items: list[dict[str, Any]], start: date, end: date, agent: str = ""
) -> list[dict[str, Any]]:
    return [
        s
        for s in items
        if start <= raw_day(s) <= end and (not agent or s["botID"] == agent)
    ]


def ranked(values: Counter[Any] | dict[Any, float]) -> list[tuple[Any, float]]:
    """Largest first, ties by the smaller key, zeros left out (the documented rule)."""
    pairs = [(k, v) for k, v in values.items() if v > 0]
    return sorted(pairs, key=lambda p: (-p[1], p[0]))[:TOP_N]


def expected(chosen: list[dict[str, Any]]) -> dict[str, Any]:
    costs: dict[str, float] = {}
    for s in chosen:
        if raw_cost(s) is not None:
            costs[s["botID"]] = costs.get(s["botID"], 0.0) + (raw_cost(s) or 0.0)
    tokens: Counter[str] = Counter()
    for s in chosen:
        tokens[s["botID"]] += s["totalTokens"] or 0
    return {
        "totals": {
            "conversations": len(chosen),
            "messages": None,
            "promptTokens": sum(s["promptTokens"] or 0 for s in chosen),
            "completionTokens": sum(s["completionTokens"] or 0 for s in chosen),
            "totalTokens": sum(s["totalTokens"] or 0 for s in chosen),
            "withoutTokens": sum(s["totalTokens"] is None for s in chosen),
            "withoutCost": sum(raw_cost(s) is None for s in chosen),
            "flagged": sum(s["hasFlag"] is True for s in chosen),
            "flagUnknown": sum(s["hasFlag"] is None for s in chosen),
        },
        "cost": sum(c for s in chosen if (c := raw_cost(s)) is not None),
        "agentsByConversations": ranked(Counter(s["botID"] for s in chosen)),
        "agentsByTokens": ranked(tokens),
        "agentsByCost": ranked(costs),
        "flaggedAgents": ranked(Counter(s["botID"] for s in chosen if s["hasFlag"])),
        "busiestDays": ranked(Counter(raw_day(s).isoformat() for s in chosen)),
        "busiestHours": ranked(Counter(int(s["lastUpdated"][11:13]) for s in chosen)),
    }


def top_pairs(document: dict[str, Any], name: str) -> list[tuple[Any, float]]:
    key, value = {
        "agentsByConversations": ("agentId", "conversations"),
        "agentsByTokens": ("agentId", "tokens"),
        "agentsByCost": ("agentId", "cost"),
        "flaggedAgents": ("agentId", "flagged"),
        "busiestDays": ("day", "conversations"),
        "busiestHours": ("hour", "conversations"),
    }[name]
    return [(e[key], e[value]) for e in document["top"][name]]


def states(today: date, agent: str) -> list[tuple[str, date, date, str]]:
    """(query string, first day, last day, agent) for each period to check."""
    custom = (today - timedelta(days=20), today - timedelta(days=5))
    return [
        ("", today - timedelta(days=29), today, ""),
        ("days=7", today - timedelta(days=6), today, ""),
        ("days=30", today - timedelta(days=29), today, ""),
        ("days=90", today - timedelta(days=89), today, ""),
        (f"from={custom[0]}&to={custom[1]}", *custom, ""),
        (f"days=90&agent={agent}", today - timedelta(days=89), today, agent),
        (f"from={custom[0]}&to={custom[1]}&agent={agent}", *custom, agent),
    ]


# -- what the page shows ---------------------------------------------------------


def strip_tags(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def page_totals(html: str) -> dict[str, str]:
    return {
        key: strip_tags(value)
        for key, value in re.findall(
            r'<dd[^>]*data-total="(\w+)">(.*?)</dd>', html, re.S
        )
    }


def page_top(html: str, key: str) -> list[str]:
    match = re.search(rf'<ol data-top="{key}">(.*?)</ol>', html, re.S)
    return (
        [strip_tags(li) for li in re.findall(r"<li>(.*?)</li>", match.group(1), re.S)]
        if match
        else []
    )


def chart_links(html: str, chart: str) -> list[str]:
    """Return the hrefs of one chart's link layer, in drawing order."""
    frame = re.search(
        rf'<div class="chart-frame \w+"><svg[^>]*id="chart-{chart}".*?</div>',
        html,
        re.S,
    )
    assert frame, chart
    layer = frame.group(0).split('class="chart-links"', 1)[1]
    return [
        href.replace("&amp;", "&") for href in re.findall(r'<a href="([^"]+)"', layer)
    ]


def list_args(href: str) -> dict[str, str]:
    parts = urlsplit(href)
    assert parts.path == "/conversations"
    return {k: v[0] for k, v in parse_qs(parts.query).items()}


# -- tests -------------------------------------------------------------------------


def test_totals_and_top_lists_equal_an_independent_count(
    reviewer: Browser, alice: list[dict[str, Any]]
) -> None:
    before = datetime.now(UTC).date()
    agent = Counter(s["botID"] for s in alice).most_common()[1][0]
    for query, start, end, agent_id in states(before, agent):
        document = reviewer.get(f"/insights.json?{query}").json()
        period = document["period"]
        if period["to"] != end.isoformat():
            # The day changed (UTC midnight) between the two clocks.
            pytest.skip("UTC midnight passed during the test")
        assert (period["from"], period["to"]) == (start.isoformat(), end.isoformat())
        # With an agent, AIRisk filters the scan (the list's search does too).
        scanned = [s for s in alice if not agent_id or s["botID"] == agent_id]
        assert document["complete"] is True and document["scanned"] == len(scanned)
        want = expected(in_range(alice, start, end, agent_id))
        totals = document["totals"]
        assert {k: totals[k] for k in want["totals"]} == want["totals"], query
        assert totals["messagesNote"] == "not known from summaries"
        assert totals["cost"] == pytest.approx(want["cost"], abs=1e-6)
        share = want["totals"]["flagged"] / want["totals"]["conversations"]
        assert totals["flaggedShare"] == pytest.approx(share, abs=1e-6)
        assert want["totals"]["conversations"] > 0, query
        for name in (
            "agentsByConversations",
            "agentsByTokens",
            "flaggedAgents",
            "busiestDays",
            "busiestHours",
        ):
            assert top_pairs(document, name) == want[name], (query, name)
        got_cost = top_pairs(document, "agentsByCost")
        assert [k for k, _ in got_cost] == [k for k, _ in want["agentsByCost"]]
        assert [v for _, v in got_cost] == pytest.approx(
            [v for _, v in want["agentsByCost"]], abs=1e-6
        )
        if agent_id:
            assert document["agent"]["id"] == agent_id
            assert {e["agentId"] for e in document["charts"]["agents"]} == {agent_id}


def test_the_page_shows_the_json_numbers_and_the_csv_holds_them(
    reviewer: Browser,
) -> None:
    follow_scan(reviewer, "/insights?days=90")
    html = reviewer.get("/insights?days=90").text
    document = unsigned(reviewer.get("/insights?days=90&format=json").json())
    assert unsigned(reviewer.get("/insights.json?days=90").json()) == document
    totals = document["totals"]
    shown = page_totals(html)
    assert shown["conversations"] == number(totals["conversations"])
    assert shown["messages"] == "Not known from summaries"
    for key in ("promptTokens", "completionTokens", "totalTokens", "flagged"):
        assert shown[key] == number(totals[key]), key
    assert shown["cost"] == money(totals["cost"])
    assert shown["flaggedShare"].startswith(f"{totals['flaggedShare'] * 100:.1f}%")
    assert shown["withoutTokens"].startswith(number(totals["withoutTokens"]))
    names = {e["agentId"]: e["agentName"] for e in document["charts"]["agents"]}
    assert page_top(html, "agentsByConversations") == [
        f"{names[e['agentId']]} {number(e['conversations'])}"
        for e in document["top"]["agentsByConversations"]
    ]
    assert page_top(html, "agentsByCost") == [
        f"{names[e['agentId']]} {money(e['cost'])}"
        for e in document["top"]["agentsByCost"]
    ]
    assert page_top(html, "busiestDays") == [
        f"{e['day']} {number(e['conversations'])}"
        for e in document["top"]["busiestDays"]
    ]
    for chart, rows in document["charts"].items():
        response = reviewer.get(f"/insights/{chart}.csv?days=90")
        assert response.headers["Content-Type"].startswith("text/csv")
        assert "attachment" in response.headers["Content-Disposition"]
        parsed = list(csv.DictReader(io.StringIO(csv_data(response.text))))
        as_text = [{k: "" if v is None else str(v) for k, v in r.items()} for r in rows]
        assert parsed == as_text, chart
    assert len(document["charts"]["conversations"]) == 90
    assert len(document["charts"]["heatmap"]) == 7 * 24
    daily = document["charts"]["conversations"]
    assert sum(d["conversations"] for d in daily) == totals["conversations"]
    assert sum(d["flagged"] for d in daily) == totals["flagged"]
    heat = sum(c["conversations"] for c in document["charts"]["heatmap"])
    assert heat == totals["conversations"]
    # The data table under the first chart holds the same rows.
    table = re.search(r'id="h-conversations".*?<tbody>(.*?)</tbody>', html, re.S)
    assert table
    cells = [
        strip_tags(row).split(" ")
        for row in re.findall(r"<tr>(.*?)</tr>", table.group(1), re.S)
    ]
    assert cells == [
        [d["day"], number(d["conversations"]), number(d["flagged"])] for d in daily
    ]


def test_chart_links_open_the_lists_they_summarise(
    reviewer: Browser, alice: list[dict[str, Any]]
) -> None:
    follow_scan(reviewer, "/insights")
    html = reviewer.get("/insights").text
    document = reviewer.get("/insights.json").json()
    start = date.fromisoformat(document["period"]["from"])
    end = date.fromisoformat(document["period"]["to"])
    daily = {d["day"]: d for d in document["charts"]["conversations"]}

    day_links = chart_links(html, "conversations")
    plain = [h for h in day_links if "flagged" not in list_args(h)]
    flagged = [h for h in day_links if list_args(h).get("flagged") == "1"]
    assert plain and flagged
    for href in (plain[0], plain[-1], flagged[0]):
        args = list_args(href)
        day = date.fromisoformat(args["from"])
        assert args["to"] == args["from"] and "agent" not in args
        want = [
            s["id"]
            for s in in_range(alice, day, day)
            if args.get("flagged") != "1" or s["hasFlag"]
        ]
        key = "flagged" if args.get("flagged") else "conversations"
        assert len(want) == daily[day.isoformat()][key]
        assert all_result_ids(reviewer, href) == want, href

    (token_day, *_) = chart_links(html, "tokens")
    assert list_args(token_day)["from"] == list_args(token_day)["to"]

    agent_links = chart_links(html, "agents")
    assert len(agent_links) == len(document["charts"]["agents"])
    args = list_args(agent_links[-1])
    assert (args["from"], args["to"]) == (start.isoformat(), end.isoformat())
    want = [s["id"] for s in in_range(alice, start, end, args["agent"])]
    assert all_result_ids(reviewer, agent_links[-1]) == want

    # A heatmap cell cannot say "Mondays at 14:00" to the list: it opens the
    # period, and its tooltip says so.
    cells = chart_links(html, "heatmap")
    assert len(cells) == 7 * 24
    assert list_args(cells[0]) == {"from": start.isoformat(), "to": end.isoformat()}
    assert "cannot filter by weekday or hour" in html


def test_an_agent_filter_carries_into_the_day_links(
    reviewer: Browser, alice: list[dict[str, Any]]
) -> None:
    agent = alice[0]["botID"]
    follow_scan(reviewer, f"/insights?days=7&agent={agent}")
    html = reviewer.get(f"/insights?days=7&agent={agent}").text
    href = chart_links(html, "conversations")[0]
    args = list_args(href)
    assert args["agent"] == agent
    day = date.fromisoformat(args["from"])
    want = [s["id"] for s in in_range(alice, day, day, agent)]
    assert want and all_result_ids(reviewer, href) == want


def test_the_first_visit_streams_the_scan_and_the_second_costs_nothing(
    reviewer: Browser, demo: Any, alice: list[dict[str, Any]]
) -> None:
    _, counting, _ = demo
    chunks = reviewer.chunks("/insights?days=7")
    body = "".join(chunks)
    assert len(chunks) > 2, "the page arrives in pieces"
    assert "Scanned 1 page" in body and "Scanned 3 pages" in body
    assert body.rstrip().endswith("</html>")
    refresh = re.search(r'http-equiv="refresh" content="0;url=([^"]+)"', body)
    assert refresh and refresh.group(1) == "/insights?days=7"
    pages = counting.count("GetConversations")
    # Every page of rows, then the empty page that ends the history.
    assert pages == -(-len(alice) // 100) + 1
    page = reviewer.get(refresh.group(1))
    assert "Conversations per day" in Page(page.text).text
    reviewer.get("/insights?days=7")
    reviewer.get("/insights?days=90")
    reviewer.get("/insights.json")
    reviewer.get("/insights/heatmap.csv?days=30")
    reviewer.get(f"/conversations?from={datetime.now(UTC).date()}")
    assert counting.count("GetConversations") == pages, "one scan serves them all"
    # "Refresh" reads the history again, then drops refresh=1 from the URL.
    again = reviewer.get("/insights?days=7&refresh=1").text
    assert counting.count("GetConversations") == 2 * pages
    assert 'content="0;url=/insights?days=7"' in again


def test_charts_are_labelled_images_with_data_tables(reviewer: Browser) -> None:
    html = follow_scan(reviewer, "/insights").text
    doc = Page(html)
    images = doc.find_all("svg", role="img")
    assert len(images) == 5
    ids = doc.ids()
    titles = re.findall(r'<title id="([\w-]+)">([^<]+)</title>', html)
    assert len(titles) == 5
    for svg in images:
        title, desc = (svg["aria-labelledby"] or "").split()
        assert title in ids and desc in ids
        assert svg["id"] and svg["id"] + "-title" == title
    layers = doc.find_all("svg", class_="chart-links")
    assert len(layers) == 5
    assert all(layer["aria-hidden"] == "true" for layer in layers)
    links = [a for a in doc.find_all("a") if a.get("tabindex") == "-1"]
    assert links and all((a["href"] or "").startswith("/conversations?") for a in links)
    assert len(doc.find_all("details")) == 5
    assert len(doc.find_all("table", class_="data")) == 5
    # CSP: no inline styles or scripts anywhere on the page.
    assert " style=" not in html and "<script>" not in html
    assert doc.find_all("a", href="/insights")  # the header link


def test_bad_values_fall_back_and_the_form_keeps_the_state(reviewer: Browser) -> None:
    follow_scan(reviewer, "/insights")
    today = datetime.now(UTC).date()
    default = reviewer.get("/insights.json?days=13&agent=not%20an%20id").json()
    assert default["period"]["days"] == 30 and default["agent"] is None
    swapped = reviewer.get("/insights.json?from=2026-01-20&to=2026-01-10").json()
    assert (swapped["period"]["from"], swapped["period"]["to"]) == (
        "2026-01-10",
        "2026-01-20",
    )
    html = reviewer.get("/insights?days=7").text
    doc = Page(html)
    assert doc.find_all("input", type="hidden", name="days", value="7")
    (current,) = doc.find_all(
        "a", **{"aria-current": "page", "href": "/insights?days=7"}
    )
    assert current
    custom = Page(reviewer.get(f"/insights?from={today}&to={today}").text)
    assert custom.find_all("input", name="from", value=today.isoformat())
    assert not custom.find_all("input", name="days")


def test_insights_need_a_token(demo: Any, tmp_path: Path) -> None:
    server, _, _ = demo
    with DemoServer(make_app(tmp_path, AIRISK_BASE_URL=server.url)) as dashboard:
        visitor = Browser(dashboard.url)
        for path in ("/insights?days=7", "/insights.json", "/insights/cost.csv"):
            response = visitor.get(path)
            assert urlsplit(response.url).path == "/token"
            assert parse_qs(urlsplit(response.url).query)["next"] == [path]
        landed = visitor.enter_token(
            ALICE, visitor.get("/insights?" + urlencode({"days": 7}))
        )
        assert visitor.path_of(landed) == "/insights?days=7"


def test_a_history_cut_at_the_scan_limit_is_shown_with_a_warning(
    demo: Any, tmp_path: Path
) -> None:
    _, counting, _ = demo
    with signed_in_reviewer(demo, tmp_path, AIRISK_SCAN_MAX=150) as reviewer:
        page = follow_scan(reviewer, "/insights?days=90")
        assert "Only the newest 200 conversations were read" in Page(page.text).text
        assert reviewer.get("/insights.json?days=90").json()["complete"] is False
        # Cut at the limit is as far as a scan gets: no new scan each time.
        assert counting.count("GetConversations") == 2


def list_page(skip: int) -> list[Any]:
    query = {"results": "100", "skip": str(skip), "metadatasearch": ""}
    return [matchers.query_param_matcher(query)]


@pytest.fixture
def mocked(client: FlaskClient, upstream: responses.RequestsMock) -> FlaskClient:
    """A client signed in against a faked AIRisk (the token check consumed)."""
    check = upstream.get(LIST_URL, json=[])
    upstream.get(AGENTS_URL, json=AGENTS)
    enter_token(client, TOKEN)
    upstream.remove(check)
    return client


@pytest.mark.parametrize(
    ("status", "shown"),
    [
        (401, "AIRisk no longer accepts your access token"),
        (503, "Reading the history stopped"),
    ],
)
def test_a_failure_during_the_scan_is_shown_on_the_streamed_page(
    mocked: FlaskClient, upstream: responses.RequestsMock, status: int, shown: str
) -> None:
    rows = [summary(n) for n in range(100)]
    upstream.get(LIST_URL, json=rows, match=list_page(0))
    upstream.get(LIST_URL, status=status, json={}, match=list_page(100))
    response = mocked.get("/insights")
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert shown in body and "Scanned 1 page" in body
    assert "http-equiv" not in body and body.rstrip().endswith("</html>")
    after = mocked.get("/insights")
    if status == 401:
        # The session record is gone: the next page asks for a token.
        assert urlsplit(after.headers["Location"]).path == "/token"
