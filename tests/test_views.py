"""The list and conversation pages through the Flask test client."""

from __future__ import annotations

import html as html_module
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from flask.testing import FlaskClient
from responses import matchers
from support import BASE, enter_token, page
from support.fake_airisk import LIST_URL, TOKEN, summary


def conversation(**fields: Any) -> dict[str, Any]:
    body = summary(
        1,
        id="conv-1",
        title="Vendor NDA review",
        hasFlag=True,
        messages=[
            {"id": "m-sys", "messageType": "System", "text": "You are a legal helper."},
            {
                "id": "m-1",
                "messageType": "User",
                "text": "Please review <b>this</b> clause",
                "fileName": "nda.docx",
                "fileURL": "https://files.example/nda.docx",
            },
            {
                "id": "m-2",
                "messageType": "AI",
                "text": "**Summary**\n\n- point one【4:0†source】\n\n"
                "```python\nprint(1)\n```",
                "feedback": "Like",
                "citations": [
                    {
                        "id": "c1",
                        "title": "NDA policy",
                        "url": "https://policies.example/nda",
                    }
                ],
            },
            {
                "id": "m-3",
                "messageType": "User",
                "text": "And this file?",
                "fileName": "notes.txt",
                "fileURL": "javascript:alert(1)",
            },
            {"id": "m-4", "messageType": "AI", "text": "No.", "feedback": "Dislike"},
        ],
    )
    body.update(fields)
    return body


# -- the list ---------------------------------------------------------------


def test_list_shows_rows_with_agent_names_and_facts(
    signed_in: FlaskClient, upstream: responses.RequestsMock
) -> None:
    rows = [
        summary(1, title="Expense policy question", hasFlag=True),
        summary(2, botID="a2", currentCost={"totalCost": 1.5}, totalTokens=98765),
        summary(3, botID="zz", title=""),
    ]
    upstream.get(LIST_URL, json=rows)
    response = signed_in.get("/conversations")
    assert response.status_code == 200
    doc = page(response)
    assert "Expense policy question" in doc.text
    assert "Finance Copilot" in doc.text and "Legal Helper" in doc.text
    assert "Unknown agent" in doc.text and "(untitled)" in doc.text
    assert "98,765" in doc.text and "$1.50" in doc.text and "$0.0123" in doc.text
    assert "2026-11-28 10:00 UTC" in doc.text
    assert len(doc.find_all("span", class_="flag")) == 1
    links = [
        (a["href"] or "").split("?")[0]
        for a in doc.find_all("a")
        if re.fullmatch(r"/conversations/[\w-]+\?from=.*", a["href"] or "")
    ]
    assert links == [
        "/conversations/conv-1",
        "/conversations/conv-2",
        "/conversations/conv-3",
    ]
    assert response.headers["Cache-Control"] == "no-store"


def _rows_html(response: Any) -> str:
    html = response.get_data(as_text=True)
    return html[html.index("<tbody>") : html.rindex("</tbody>")]


def test_list_rows_are_rendered_once_and_follow_their_data(
    signed_in: FlaskClient,
    upstream: responses.RequestsMock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = datetime(2026, 11, 28, 13, 0, tzinfo=UTC)  # rows are updated at 10:00
    monkeypatch.setattr("webapp.web.conversations._now", lambda: now)
    rows = [summary(1, title="First title", hasFlag=True), summary(2)]
    upstream.get(LIST_URL, json=rows)
    kept = signed_in.application.jinja_env.globals["list_rows"]
    first = signed_in.get("/conversations?refresh=1")
    hits = kept.cache_info().hits
    again = signed_in.get("/conversations?refresh=1")
    assert kept.cache_info().hits == hits + 2, "both rows came back rendered"
    assert _rows_html(again) == _rows_html(first)
    assert "3 hours ago" in _rows_html(first) and "First title" in _rows_html(first)

    # What a row shows follows its data, the clock and the list it is in.
    rows[0]["title"] = "Second title"
    upstream.replace(responses.GET, LIST_URL, json=rows)
    changed = _rows_html(signed_in.get("/conversations?refresh=1"))
    assert "Second title" in changed and "First title" not in changed
    now = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
    assert "5 hours ago" in _rows_html(signed_in.get("/conversations?refresh=1"))
    bigger = _rows_html(signed_in.get("/conversations?size=50&refresh=1"))
    assert bigger.count("from=size%3D50") == 2


def test_large_list_rows_are_shown_but_not_kept(
    signed_in: FlaskClient, upstream: responses.RequestsMock
) -> None:
    # The row cache is bounded by entries: rows with 100 KB titles and tags
    # would make 4,096 kept rows hold gigabytes, so such rows are not kept.
    big = [
        summary(i, title=f"T{i} " + "x" * 100_000, metaData=["t" * 50_000])
        for i in range(1, 6)
    ]
    upstream.get(LIST_URL, json=[*big, summary(6, title="Small title")])
    kept = signed_in.application.jinja_env.globals["list_rows"]
    kept_before = kept.cache_info().currsize
    shown = _rows_html(signed_in.get("/conversations?refresh=1"))
    assert all(f"T{i} xxx" in shown for i in range(1, 6)) and "Small title" in shown
    assert kept.cache_info().currsize == kept_before + 1, "only the small row kept"


def test_kept_rows_carry_nothing_of_the_session_that_rendered_them(
    signed_in: FlaskClient, upstream: responses.RequestsMock
) -> None:
    upstream.get(LIST_URL, json=[summary(1), summary(2)])
    first = signed_in.get("/conversations?refresh=1")
    other = signed_in.application.test_client()
    enter_token(other, "bob-token-9876543210fedcba")
    kept = signed_in.application.jinja_env.globals["list_rows"]
    hits = kept.cache_info().hits
    second = other.get("/conversations?refresh=1")
    assert kept.cache_info().hits == hits + 2, "Bob's page reused Alice's rows"
    csrf = [
        m
        for r in (first, second)
        for m in re.findall(r'name="csrf_token" value="([^"]+)"', r.text)
    ]
    assert len(set(csrf)) == 2, "each session has its own CSRF token"
    for secret in [*csrf, TOKEN[-4:], "3210fedcba"[-4:]]:
        assert secret not in _rows_html(second)


def test_list_rows_are_not_kept_when_templates_reload(
    signed_in: FlaskClient, upstream: responses.RequestsMock
) -> None:
    upstream.get(LIST_URL, json=[summary(1)])
    signed_in.application.jinja_env.auto_reload = True
    kept = signed_in.application.jinja_env.globals["list_rows"]
    for _ in range(2):
        assert "Conversation 1" in signed_in.get("/conversations?refresh=1").text
    assert kept.cache_info().hits == 0 and kept.cache_info().currsize == 0


def test_agent_ids_that_name_dict_methods_are_unknown_agents(
    signed_in: FlaskClient, upstream: responses.RequestsMock
) -> None:
    # names[row.agent_id] in a template: Jinja falls back to an attribute
    # when a subscript fails, so a missing "items" must never reach dict.items.
    rows = [summary(1, botID="items"), summary(2, botID="__class__"), summary(3)]
    upstream.get(LIST_URL, json=rows)
    text = page(signed_in.get("/conversations")).text
    assert text.count("Unknown agent") == 2 and "Finance Copilot" in text
    assert "built-in method" not in text and "class" not in text


def test_filters_and_paging_go_to_the_api_and_stay_in_links(
    signed_in: FlaskClient, upstream: responses.RequestsMock
) -> None:
    upstream.get(
        LIST_URL + "/a2",
        json=[summary(n) for n in range(50)],
        match=[
            matchers.query_param_matcher(
                {"results": "50", "skip": "100", "metadatasearch": "pii"}
            )
        ],
    )
    response = signed_in.get("/conversations?page=3&size=50&agent=a2&tag=pii")
    assert response.status_code == 200
    doc = page(response)
    (older,) = doc.find_all("a", rel="next")
    (newer,) = doc.find_all("a", rel="prev")
    assert parse_qs(urlsplit(older["href"]).query) == {
        "page": ["4"],
        "size": ["50"],
        "agent": ["a2"],
        "tag": ["pii"],
    }
    assert parse_qs(urlsplit(newer["href"]).query)["page"] == ["2"]
    (selected,) = [
        o for o in doc.find_all("option") if "selected" in o and o.get("value") == "a2"
    ]
    assert selected
    (tag,) = doc.find_all("input", name="tag")
    assert tag["value"] == "pii"


def test_no_next_page_when_the_page_is_short(
    signed_in: FlaskClient, upstream: responses.RequestsMock
) -> None:
    # A short page may be a capped one: the end is the empty page after it.
    upstream.get(LIST_URL, json=[summary(n) for n in range(19)])
    upstream.get(LIST_URL, json=[])
    doc = page(signed_in.get("/conversations"))
    asked = parse_qs(urlsplit(upstream.calls[-1].request.url).query)
    assert asked["skip"] == ["19"] and asked["results"] == ["1"]
    assert doc.find_all("a", rel="next") == []
    assert doc.find_all("a", rel="prev") == []


def test_a_full_page_offers_the_next_page(
    signed_in: FlaskClient, upstream: responses.RequestsMock
) -> None:
    upstream.get(LIST_URL, json=[summary(n) for n in range(20)])
    doc = page(signed_in.get("/conversations"))
    (older,) = doc.find_all("a", rel="next")
    assert older["href"] == "/conversations?page=2"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("page=abc&size=37", {"results": "20", "skip": "0"}),
        ("page=-4&size=100", {"results": "100", "skip": "0"}),
        ("page=99999999999", {"results": "20", "skip": str(9999 * 20)}),
        ("agent=../x", {"results": "20", "skip": "0"}),
    ],
)
def test_bad_list_parameters_fall_back_quietly(
    signed_in: FlaskClient, upstream: responses.RequestsMock, query: str, expected: dict
) -> None:
    upstream.get(
        LIST_URL,
        json=[],
        match=[matchers.query_param_matcher({**expected, "metadatasearch": ""})],
    )
    assert signed_in.get("/conversations?" + query).status_code == 200


def test_empty_page_beyond_the_end_links_back(
    signed_in: FlaskClient, upstream: responses.RequestsMock
) -> None:
    upstream.get(LIST_URL, json=[])
    doc = page(signed_in.get("/conversations?page=7"))
    assert "There are no conversations on page 7" in doc.text
    assert doc.find_all("a", href="/conversations")


def test_agents_are_fetched_once_for_many_pages(
    signed_in: FlaskClient, upstream: responses.RequestsMock
) -> None:
    upstream.get(LIST_URL, json=[summary(1)])
    for _ in range(3):
        signed_in.get("/conversations")
    agent_calls = [c for c in upstream.calls if "ListAgents" in c.request.url]
    assert len(agent_calls) == 1


# -- one conversation --------------------------------------------------------


def test_conversation_page_shows_facts_and_messages(
    signed_in: FlaskClient, upstream: responses.RequestsMock
) -> None:
    upstream.get(BASE + "/api/Chat/GetConversation/conv-1", json=conversation())
    response = signed_in.get("/conversations/conv-1")
    assert response.status_code == 200
    doc = page(response)
    for text in (
        "Vendor NDA review",
        "Finance Copilot",
        "user-1",
        "1,201",
        "$0.0123",
        "Flagged by AIRisk",
        "2026-11-28 09:00 UTC",
    ):
        assert text in doc.text
    ids = [i for i in doc.ids() if i.startswith("m-")]
    assert ids == ["m-m-1", "m-m-2", "m-m-3", "m-m-4"], "system message hidden"
    assert "1 system message hidden" in doc.text
    classes = [
        a["class"] for a in doc.find_all("li") if (a.get("id") or "").startswith("m-")
    ]
    assert classes == ["message user", "message ai", "message user", "message ai"]
    assert "Liked" in doc.text and "Disliked" in doc.text


def test_ai_text_is_markdown_and_user_text_is_escaped(
    signed_in: FlaskClient, upstream: responses.RequestsMock
) -> None:
    upstream.get(BASE + "/api/Chat/GetConversation/conv-1", json=conversation())
    body = signed_in.get("/conversations/conv-1").get_data(as_text=True)
    assert "<strong>Summary</strong>" in body
    assert '<code class="language-python">' in body
    assert "Please review &lt;b&gt;this&lt;/b&gt; clause" in body


def test_citation_markers_link_to_the_message_citations(
    signed_in: FlaskClient, upstream: responses.RequestsMock
) -> None:
    upstream.get(BASE + "/api/Chat/GetConversation/conv-1", json=conversation())
    doc = page(signed_in.get("/conversations/conv-1"))
    refs = [a["href"] for a in doc.find_all("a") if (a["href"] or "").startswith("#c")]
    # Anchors use the message's number (the hidden System message is #1), so
    # they stay the same whether System messages are shown or not.
    assert refs == ["#c2-1"]
    assert "c2-1" in doc.ids()
    (source,) = doc.find_all("a", href="https://policies.example/nda")
    assert source["rel"] == "noopener noreferrer nofollow"
    assert "【4:0†source】" not in doc.text


def test_attachments_link_only_to_https(
    signed_in: FlaskClient, upstream: responses.RequestsMock
) -> None:
    upstream.get(BASE + "/api/Chat/GetConversation/conv-1", json=conversation())
    doc = page(signed_in.get("/conversations/conv-1"))
    assert doc.find_all("a", href="https://files.example/nda.docx")
    assert "notes.txt" in doc.text
    assert not [a for a in doc.find_all("a") if "javascript" in (a["href"] or "")]


def test_system_toggle_shows_system_messages(
    signed_in: FlaskClient, upstream: responses.RequestsMock
) -> None:
    upstream.get(BASE + "/api/Chat/GetConversation/conv-1", json=conversation())
    plain = page(signed_in.get("/conversations/conv-1"))
    (toggle,) = [a for a in plain.find_all("a") if "system=1" in (a["href"] or "")]
    doc = page(signed_in.get(toggle["href"] or ""))
    assert "m-m-sys" in doc.ids()
    assert "You are a legal helper." in doc.text
    assert doc.find_all("a", href="/conversations/conv-1")


def test_every_message_has_a_permalink(
    signed_in: FlaskClient, upstream: responses.RequestsMock
) -> None:
    upstream.get(BASE + "/api/Chat/GetConversation/conv-1", json=conversation())
    doc = page(signed_in.get("/conversations/conv-1"))
    links = [a["href"] for a in doc.find_all("a") if "data-copy-link" in a]
    assert links == [f"/conversations/conv-1?at=m-{n}#m-m-{n}" for n in range(1, 5)]


def test_conversation_without_messages(
    signed_in: FlaskClient, upstream: responses.RequestsMock
) -> None:
    upstream.get(
        BASE + "/api/Chat/GetConversation/conv-1", json=summary(1, messages=None)
    )
    doc = page(signed_in.get("/conversations/conv-1"))
    assert "This conversation has no messages to show." in doc.text


# -- failures ----------------------------------------------------------------


def test_401_drops_the_token_and_comes_back_after_a_new_one(
    signed_in: FlaskClient, upstream: responses.RequestsMock
) -> None:
    target = "/conversations/conv-1?system=1"
    upstream.get(BASE + "/api/Chat/GetConversation/conv-1", status=401)
    response = signed_in.get(target)
    location = urlsplit(response.headers["Location"])
    assert location.path == "/token"
    query = parse_qs(location.query)
    assert query == {"next": [target], "reason": ["expired"]}
    # The token is gone from the session: the next page asks for one too.
    assert (
        urlsplit(signed_in.get("/conversations").headers["Location"]).path == "/token"
    )
    notice = page(signed_in.get(response.headers["Location"]))
    assert "AIRisk no longer accepts your access token" in notice.text
    upstream.replace(
        responses.GET, BASE + "/api/Chat/GetConversation/conv-1", json=conversation()
    )
    upstream.get(LIST_URL, json=[])
    answer = enter_token(signed_in, "new-token-abcdefghijkl", next_path=target)
    assert answer.headers["Location"] == target
    assert signed_in.get(target).status_code == 200


def test_401_answers_json_requests_with_401(
    signed_in: FlaskClient, upstream: responses.RequestsMock
) -> None:
    upstream.get(LIST_URL, status=401)
    response = signed_in.get("/conversations", headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert response.get_json()["error"]["status"] == 401


def test_403_keeps_the_token(
    signed_in: FlaskClient, upstream: responses.RequestsMock
) -> None:
    upstream.get(BASE + "/api/Chat/GetConversation/conv-1", status=403)
    response = signed_in.get("/conversations/conv-1")
    assert response.status_code == 403
    assert "does not allow it to see this" in page(response).text
    upstream.get(LIST_URL, json=[])
    assert signed_in.get("/conversations").status_code == 200


def test_unknown_conversation_is_a_404_page(
    signed_in: FlaskClient, upstream: responses.RequestsMock
) -> None:
    upstream.get(BASE + "/api/Chat/GetConversation/nope", status=404)
    response = signed_in.get("/conversations/nope")
    assert response.status_code == 404
    assert "Conversation not found" in page(response).text


def test_a_refused_id_is_logged_once(
    signed_in: FlaskClient,
    upstream: responses.RequestsMock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    for _ in range(3):
        response = signed_in.get("/conversations/odd.id")
        assert response.status_code == 404
        assert "Conversation not found" in page(response).text
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "'odd.id'" in warnings[0], warnings
    assert not any(TOKEN in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "path",
    [
        "/conversations/..%2FUsers%2FListUsers",
        "/conversations/a%2Fb",
        "/conversations/%2E%2E",
        "/conversations/a%3Fb",
        "/conversations/a%23b",
        "/conversations/a%0D%0AX:1",
        "/conversations/" + "x" * 500,
        "/conversations/%D0%B0bc",
        "/conversations/a.b",
    ],
)
def test_bad_ids_are_404_with_no_upstream_call(
    signed_in: FlaskClient, upstream: responses.RequestsMock, path: str
) -> None:
    before = len(upstream.calls)
    response = signed_in.get(path)
    assert response.status_code == 404
    assert len(upstream.calls) == before


@pytest.mark.parametrize(
    ("reply", "status", "words"),
    [
        ({"status": 500}, 502, "could not use"),
        ({"status": 502}, 502, "could not use"),
        ({"status": 503}, 503, "could not reach"),
        ({"status": 504}, 504, "did not answer in time"),
        ({"status": 429, "headers": {"Retry-After": "120"}}, 429, "slow down"),
        ({"body": requests.ConnectionError("refused")}, 503, "could not reach"),
        ({"body": requests.ReadTimeout("slow")}, 504, "did not answer in time"),
        (
            {"body": "<html>login</html>", "content_type": "text/html"},
            502,
            "could not use",
        ),
        ({"json": {"not": "a list"}}, 502, "could not use"),
    ],
)
def test_upstream_failures_are_friendly_pages(
    signed_in: FlaskClient,
    upstream: responses.RequestsMock,
    reply: dict[str, Any],
    status: int,
    words: str,
) -> None:
    upstream.get(LIST_URL, **reply)
    response = signed_in.get("/conversations")
    assert response.status_code == status
    doc = page(response)
    assert words in doc.text
    assert "Traceback" not in response.get_data(as_text=True)
    assert doc.find_all("a", href="/conversations"), "a way to try again"
    if status == 429:
        assert response.headers["Retry-After"] == "120"
    upstream.replace(responses.GET, LIST_URL, json=[])
    assert signed_in.get("/conversations").status_code == 200, "token kept"


def test_unknown_page_is_a_404_in_our_layout(client: FlaskClient) -> None:
    response = client.get("/nowhere")
    assert response.status_code == 404
    assert "There is no page at this address." in page(response).text


def test_unexpected_errors_show_a_plain_page(
    signed_in: FlaskClient, upstream: responses.RequestsMock, caplog: Any
) -> None:
    upstream.get(LIST_URL, body=RuntimeError("bug in a library"))
    signed_in.application.testing = False
    signed_in.application.config["PROPAGATE_EXCEPTIONS"] = False
    response = signed_in.get("/conversations")
    assert response.status_code == 500
    body = response.get_data(as_text=True)
    assert "Something went wrong" in body and "Traceback" not in body
    assert "bug in a library" not in body
    assert "Traceback" in caplog.text or "bug in a library" in caplog.text


def test_security_headers_on_pages_and_errors(client: FlaskClient) -> None:
    for path in ("/token", "/nowhere", "/static/style.css"):
        with client.get(path) as response:
            pass
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
        assert response.headers["X-Frame-Options"] == "DENY"


def test_each_page_is_sorted_by_update_before_grouping(
    signed_in: FlaskClient, upstream: responses.RequestsMock
) -> None:
    # AIRisk documents no order: this page comes back shuffled.
    now = datetime.now(UTC)
    days = [9, 40, 10, 50, 12]
    upstream.get(
        LIST_URL,
        json=[
            summary(n, lastUpdated=(now - timedelta(days=d)).isoformat())
            for n, d in enumerate(days)
        ],
    )
    response = signed_in.get("/conversations")
    html = response.get_data(as_text=True)
    order = re.findall(r'href="/conversations/(conv-\d+)', html)
    assert list(dict.fromkeys(order)) == [
        "conv-0",
        "conv-2",
        "conv-4",
        "conv-1",
        "conv-3",
    ]
    headings = [
        " ".join(html_module.unescape(re.sub(r"<[^>]+>", " ", h)).split())
        for h in re.findall(r'<tr class="group">(.*?)</tr>', html, re.S)
    ]
    # Counts of one page are labelled as such, not read as totals.
    assert headings == [
        "Previous 30 days \u00b7 3 on this page",
        "Older \u00b7 2 on this page",
    ]
    # Previous/next follow the order the list shows.
    upstream.get(BASE + "/api/Chat/GetConversation/conv-2", json=summary(2))
    doc = page(signed_in.get("/conversations/conv-2?from="))
    (previous,) = doc.find_all("a", **{"data-nav": "prev"})
    (following,) = doc.find_all("a", **{"data-nav": "next"})
    assert previous["href"].startswith("/conversations/conv-0?")
    assert following["href"].startswith("/conversations/conv-4?")
