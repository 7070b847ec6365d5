"""Reviewing at scale, end to end: search, permalinks, exports, freshness.

The real demo AIRisk API and the real dashboard on loopback; a WSGI wrapper
counts the calls that reach the demo API.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from support import ALICE, Browser, Page, enter_token, make_app, signed_in_reviewer
from support.exports import csv_data
from support.http import all_result_ids, follow_scan

from webapp.demo_api.server import DemoServer


@pytest.fixture
def dataset(demo: Any) -> Any:
    return demo[2]


def alice(dataset: Any) -> list[dict[str, Any]]:
    return list(dataset.summaries[dataset.user_id_for(ALICE)])


# -- whole-history search ------------------------------------------------------


def test_search_equals_a_brute_force_scan(reviewer: Browser, dataset: Any) -> None:
    everything = alice(dataset)
    for needle in ("policy", "NDA", "phishing", "FINANCE"):
        expected = [
            s["id"]
            for s in everything
            if needle.casefold() in (s["title"] or "").casefold()
            or any(needle.casefold() in t.casefold() for t in s["metaData"] or [])
        ]
        assert expected, needle
        found = all_result_ids(reviewer, f"/conversations?q={needle}&size=100")
        assert found == expected, needle


def test_the_scan_streams_progress_and_then_the_result(
    reviewer: Browser, demo: Any, dataset: Any
) -> None:
    _, counting, _ = demo
    chunks = reviewer.chunks("/conversations?q=policy")
    body = "".join(chunks)
    assert len(chunks) > 2, "the page arrives in pieces"
    assert "Scanned 1 page" in body and "Scanned 3 pages" in body
    assert "Stop and show what was found" in body
    assert body.rstrip().endswith("</html>")
    pages = counting.count("GetConversations")
    total = len(alice(dataset))
    # Three pages of rows, then the empty page that ends the history.
    assert pages == -(-total // 100) + 1
    # The finished scan is reused: paging through results costs no new scan.
    follow_scan(reviewer, "/conversations?q=policy")
    reviewer.get("/conversations?q=policy&page=2")
    reviewer.get("/conversations?q=policy&flagged=1&sort=cost")
    assert counting.count("GetConversations") == pages
    # "Refresh" bypasses the cache.
    follow_scan(reviewer, "/conversations?q=policy&refresh=1")
    assert counting.count("GetConversations") == 2 * pages


def test_filters_combine_over_the_whole_history(
    reviewer: Browser, dataset: Any
) -> None:
    everything = alice(dataset)
    agent = everything[0]["botID"]
    expected = [
        s["id"]
        for s in everything
        if s["botID"] == agent and s["hasFlag"] and (s["totalTokens"] or 0) >= 1000
    ]
    path = f"/conversations?agent={agent}&flagged=1&min_tokens=1000&size=100"
    assert all_result_ids(reviewer, path) == expected
    by_cost = all_result_ids(reviewer, "/conversations?sort=cost&size=100")
    costs = {s["id"]: s for s in everything}
    assert len(by_cost) == len(everything)

    def cost(item: dict[str, Any]) -> float:
        value = item["currentCost"]
        if isinstance(value, dict):
            value = value.get("totalCost")
        return value if isinstance(value, int | float) else -1.0

    values = [cost(costs[i]) for i in by_cost]
    assert values == sorted(values, reverse=True)


def test_date_range_and_attachment_filters(reviewer: Browser, dataset: Any) -> None:
    user = dataset.user_id_for(ALICE)
    everything = alice(dataset)
    day = everything[5]["lastUpdated"][:10]
    expected = [s["id"] for s in everything if s["lastUpdated"][:10] == day]
    assert all_result_ids(reviewer, f"/conversations?from={day}&to={day}") == expected
    with_files = [
        s["id"]
        for s in everything
        if any(
            m["fileName"] or m["fileURL"]
            for m in dataset.conversation(user, s["id"])["messages"]
        )
    ]
    found = all_result_ids(reviewer, "/conversations?attachments=1&size=100")
    assert found == with_files and found


def test_list_is_grouped_by_time_with_counts(reviewer: Browser) -> None:
    doc = Page(reviewer.get("/conversations?size=100").text)
    groups = re.findall(
        r"(Today|Yesterday|Previous \d+ days|Older) \u00b7 (\d+) on this page",
        doc.text,
    )
    names = [name for name, _ in groups]
    assert names[:2] == ["Today", "Yesterday"]
    assert sum(int(count) for _, count in groups) == 100


def test_stop_keeps_what_was_found(reviewer: Browser, demo: Any) -> None:
    # Read only the first chunk of a streamed scan, then follow its "Stop"
    # link while the scan still streams, as a browser does.
    response = reviewer.http.get(
        reviewer.base + "/conversations?q=a&refresh=1", stream=True, timeout=30
    )
    top = next(response.iter_content(chunk_size=None)).decode()
    stop = re.search(r'href="([^"]+)" class="stop"', top)
    assert stop
    stopped = reviewer.get(stop.group(1).replace("&amp;", "&"))
    response.close()
    assert stopped.status_code == 200
    text = Page(stopped.text).text
    assert "match" in text


# -- json twins and exports -------------------------------------------------------


def test_json_twins_of_list_and_conversation(reviewer: Browser, dataset: Any) -> None:
    listing = reviewer.get("/conversations?size=50&format=json").json()
    assert listing["mode"] == "browse" and listing["hasNext"] is True
    ids = [c["id"] for c in listing["conversations"]]
    assert ids == [s["id"] for s in alice(dataset)[:50]]
    search = reviewer.get("/conversations?q=policy&format=json").json()
    assert search["mode"] == "search" and search["complete"] is True
    assert search["total"] >= len(search["conversations"]) > 0
    cid = ids[0]
    record = reviewer.get(f"/conversations/{cid}?format=json").json()
    source = dataset.conversation(dataset.user_id_for(ALICE), cid)
    assert record["id"] == cid and record["title"] == source["title"]
    assert [m["id"] for m in record["messages"]] == [
        m["id"] for m in source["messages"]
    ]
    assert record["fetchedAt"]


def test_conversation_exports_carry_a_verifiable_evidence_header(
    reviewer: Browser, dataset: Any
) -> None:
    cid = alice(dataset)[2]["id"]
    source = dataset.conversation(dataset.user_id_for(ALICE), cid)
    exported = reviewer.get(f"/conversations/{cid}/export.json")
    assert "attachment" in exported.headers["Content-Disposition"]
    document = exported.json()
    evidence, conversation = document["evidence"], document["conversation"]
    # Recompute the hash independently: canonical JSON of "conversation".
    canonical = json.dumps(
        conversation, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
    assert hashlib.sha256(canonical).hexdigest() == evidence["sha256"]
    assert evidence["conversationId"] == cid
    assert evidence["userId"] == source["userID"]
    assert evidence["messageCount"] == len(source["messages"])
    # No PUBLIC_URL and nothing vouches for the Host: the path alone.
    assert evidence["url"] == f"/conversations/{cid}"
    assert evidence["exportedAt"].endswith("+00:00")
    assert [m["text"] for m in conversation["messages"]] == [
        m["text"] for m in source["messages"]
    ]
    # Tampering is detectable.
    conversation["messages"][0]["text"] += " (edited)"
    tampered = json.dumps(
        conversation, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()
    assert hashlib.sha256(tampered).hexdigest() != evidence["sha256"]

    markdown = reviewer.get(f"/conversations/{cid}/export.md").text
    assert f"`{evidence['sha256']}`" in markdown
    assert f"`{cid}`" in markdown
    for message in source["messages"]:
        assert message["text"] in markdown

    printable = reviewer.get(f"/conversations/{cid}/export.html")
    doc = Page(printable.text)
    assert evidence["sha256"] in doc.text and "Evidence" in doc.text
    assert len(doc.find_all("li", class_="message " + "user")) >= 1


def test_list_exports_contain_every_match_and_parse_back(
    reviewer: Browser, dataset: Any
) -> None:
    everything = alice(dataset)
    flagged = [s["id"] for s in everything if s["hasFlag"]]
    exported = reviewer.get("/conversations/export.csv?flagged=1")
    assert exported.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(csv_data(exported.text))))
    assert [r["id"] for r in rows] == flagged
    assert all(r["flagged"] == "True" for r in rows)
    document = reviewer.get("/conversations/export.json").json()
    assert [c["id"] for c in document["conversations"]] == [s["id"] for s in everything]
    assert document["total"] == len(everything) and document["complete"] is True


# -- one conversation: find, highlight, windows, neighbours -----------------------


def find_conversation(dataset: Any, predicate: Callable[[dict[str, Any]], bool]) -> Any:
    user = dataset.user_id_for(ALICE)
    for summary in alice(dataset):
        if summary["id"] == dataset.long_conversation_id:
            continue
        conversation = dataset.conversation(user, summary["id"])
        if predicate(conversation):
            return conversation
    raise AssertionError("no such conversation in the demo data")


def test_find_highlights_matches_and_lists_them(
    reviewer: Browser, dataset: Any
) -> None:
    conversation = find_conversation(
        dataset,
        lambda c: sum("approved" in m["text"] for m in c["messages"]) >= 2,
    )
    response = reviewer.get(f"/conversations/{conversation['id']}?find=APPROVED")
    doc = Page(response.text)
    matching = [
        m
        for m in conversation["messages"]
        if m["messageType"] != "System" and "approved" in m["text"].casefold()
    ]
    found_list = re.search(r'<ol class="found-list">(.*?)</ol>', response.text, re.S)
    assert found_list
    jumps = re.findall(r'href="([^"]+)"', found_list.group(1))
    assert [j.rsplit("#m-", 1)[1] for j in jumps] == [m["id"] for m in matching]
    assert len(doc.find_all("mark")) >= len(matching)


def test_highlight_and_find_survive_the_token_round_trip(
    demo: Any, dataset: Any, tmp_path: Path
) -> None:
    server, _, _ = demo
    conversation = find_conversation(dataset, lambda c: len(c["messages"]) >= 6)
    ids = [m["id"] for m in conversation["messages"] if m["messageType"] != "System"]
    shared = (
        f"/conversations/{conversation['id']}?highlight={ids[1]}..{ids[3]}&find=the"
    )
    with DemoServer(make_app(tmp_path, AIRISK_BASE_URL=server.url)) as dashboard:
        teammate = Browser(dashboard.url)
        token_page = teammate.get(shared)
        assert urlsplit(token_page.url).path == "/token"
        landed = teammate.enter_token(ALICE, token_page)
        assert teammate.path_of(landed) == shared
        doc = Page(landed.text)
        highlighted = [
            a["id"]
            for a in doc.find_all("li")
            if "highlighted" in (a.get("class") or "")
        ]
        assert highlighted == [f"m-{i}" for i in ids[1:4]]
        assert "3 messages highlighted as evidence" in doc.text
        assert doc.find_all("mark")


def test_previous_and_next_follow_the_list(reviewer: Browser, dataset: Any) -> None:
    everything = alice(dataset)
    listing = Page(reviewer.get("/conversations?size=20").text)
    row_links = [
        a["href"]
        for a in listing.find_all("a")
        if re.match(r"/conversations/[\w-]+\?from=", a["href"] or "")
    ]
    last_on_page = row_links[19]
    page = Page(reviewer.get(last_on_page or "").text)
    (nxt,) = page.find_all("a", **{"data-nav": "next"})
    (prev,) = page.find_all("a", **{"data-nav": "prev"})
    assert (nxt["href"] or "").startswith(f"/conversations/{everything[20]['id']}")
    assert parse_qs(urlsplit(nxt["href"] or "").query)["from"] == ["page=2"]
    assert (prev["href"] or "").startswith(f"/conversations/{everything[18]['id']}")
    # In search mode the neighbours come from the cached scan.
    follow_scan(reviewer, "/conversations?q=policy")
    results = Page(follow_scan(reviewer, "/conversations?q=policy").text)
    first = next(
        a["href"]
        for a in results.find_all("a")
        if re.match(r"/conversations/[\w-]+\?from=", a["href"] or "")
    )
    page = Page(reviewer.get(first or "").text)
    assert not page.find_all("a", **{"data-nav": "prev"})
    assert page.find_all("a", **{"data-nav": "next"})


def test_freshness_line_and_refresh(reviewer: Browser, demo: Any, dataset: Any) -> None:
    _, counting, _ = demo
    cid = alice(dataset)[0]["id"]
    first = Page(reviewer.get(f"/conversations/{cid}").text)
    assert "Fetched from AIRisk" in first.text
    (refresh,) = first.find_all("a", **{"data-key": "r"})
    reviewer.get(f"/conversations/{cid}")
    assert counting.count(f"GetConversation/{cid}") == 1, "second view is cached"
    reviewer.get(refresh["href"] or "")
    assert counting.count(f"GetConversation/{cid}") == 2, "refresh bypasses it"
    listing = Page(reviewer.get("/conversations").text)
    assert "Fetched from AIRisk" in listing.text


def test_theme_choice_is_remembered_in_a_cookie(reviewer: Browser) -> None:
    page = reviewer.get("/conversations")
    token = reviewer.form_token(page)
    reviewer.post(
        "/theme", {"csrf_token": token, "theme": "dark", "back": "/conversations"}
    )
    assert '<html lang="en" data-theme="dark">' in reviewer.get("/conversations").text
    reviewer.post("/theme", {"csrf_token": token, "theme": "auto", "back": "/"})
    assert "data-theme" not in reviewer.get("/conversations").text
    evil = reviewer.post(
        "/theme", {"csrf_token": token, "theme": "dark", "back": "//evil.example"}
    )
    assert urlsplit(evil.url).netloc == urlsplit(reviewer.base).netloc


def test_a_scan_cut_at_the_limit_is_final_not_rescanned(
    demo: Any, tmp_path: Path
) -> None:
    _, counting, _ = demo
    with signed_in_reviewer(demo, tmp_path, AIRISK_SCAN_MAX=150) as reviewer:
        first = follow_scan(reviewer, "/conversations?q=a")
        assert "stopped at the limit of 200" in Page(first.text).text
        scans = counting.count("GetConversations")
        assert scans == 2
        follow_scan(reviewer, "/conversations?q=a&page=2")
        reviewer.get("/conversations/export.csv?q=a")
        assert counting.count("GetConversations") == scans, "never rescanned"


FORGED = {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}


@pytest.mark.parametrize(
    ("settings", "headers", "expected"),
    [
        # Configured: the request's host does not matter, forged or not.
        (
            {"PUBLIC_URL": "https://reviews.example/audit/"},
            FORGED,
            "https://reviews.example/audit/conversations/{cid}",
        ),
        (
            {"PUBLIC_URL": "https://reviews.example", "TRUSTED_PROXIES": 1},
            {**FORGED, "X-Forwarded-Proto": "http"},
            "https://reviews.example/conversations/{cid}",
        ),
        # Not configured, nothing vouches for the Host: the path alone.
        ({}, FORGED, "/conversations/{cid}"),
        # A trusted proxy names the host (a direct forged Host is replaced).
        (
            {"TRUSTED_PROXIES": 1},
            {"Host": "evil.example", "X-Forwarded-Host": "reviews.example"},
            "http://reviews.example/conversations/{cid}",
        ),
        # TRUSTED_HOSTS checked the Host.
        (
            {"TRUSTED_HOSTS": ["localhost", "reviews.example"]},
            {"Host": "reviews.example"},
            "http://reviews.example/conversations/{cid}",
        ),
    ],
)
def test_export_url_never_comes_from_a_forged_host(
    tmp_path: Path,
    demo_api: DemoServer,
    settings: dict[str, Any],
    headers: dict[str, str],
    expected: str,
) -> None:
    app = make_app(tmp_path, AIRISK_BASE_URL=demo_api.url, **settings)
    client = app.test_client()
    enter_token(client, ALICE)
    cookie = client.get_cookie("session")
    assert cookie is not None
    for domain in ("evil.example", "reviews.example"):
        # The browser that sends these Host headers has the session cookie.
        client.set_cookie("session", cookie.value, domain=domain)
    listing = client.get("/conversations?format=json").get_json()
    cid = listing["conversations"][0]["id"]
    url = expected.format(cid=cid)
    exported = client.get(f"/conversations/{cid}/export.json", headers=headers)
    assert exported.get_json()["evidence"]["url"] == url
    markdown = client.get(f"/conversations/{cid}/export.md", headers=headers)
    assert f"- Dashboard URL: `{url}`" in markdown.get_data(as_text=True)
    printable = client.get(f"/conversations/{cid}/export.html", headers=headers)
    assert "evil.example" not in printable.get_data(as_text=True)
