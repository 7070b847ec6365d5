"""The reading flow on a conversation page, as its HTML shows it."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from support import ALICE, Browser, Page


def test_messages_headings_links_and_badges(reviewer: Browser, demo: Any) -> None:
    data = demo[2]
    user = data.user_id_for(ALICE)
    cid = data.long_conversation_id
    messages = data.conversation(user, cid)["messages"]
    place = messages[700]["id"]
    html = reviewer.get(f"/conversations/{cid}?at={place}&from=q%3Dpolicy").text
    doc = Page(html)
    shown = [i for i in doc.ids() if i.startswith("m-")]
    # Every message has a heading, so screen readers can jump between them.
    assert len(re.findall(r'<h2 class="message-title">', html)) == len(shown)
    # "Highlight from here" names its message.
    labels = [a.get("aria-label") or "" for a in doc.find_all("a")]
    assert "Highlight from message 701" in labels
    # Feedback badges need no emoji font.
    assert "\U0001f44d" not in html and "\U0001f44e" not in html
    assert re.search(r'class="feedback (like|dislike)"[^>]*>(Liked|Disliked) by', html)
    # A shared permalink carries neither find words nor the sharer's list.
    (permalink,) = [
        a["href"] for a in doc.find_all("a", **{"aria-label": "Link to message 701"})
    ]
    query = parse_qs(urlsplit(permalink or "").query)
    assert query == {"at": [place]}
    # Find keeps the place: the form carries ?at=.
    (at_field,) = doc.find_all("input", name="at")
    assert at_field["value"] == place


def test_the_sorted_column_is_marked_for_small_screens(reviewer: Browser) -> None:
    reviewer.get("/conversations?sort=cost")  # sorting scans; the scan streams
    doc = Page(reviewer.get("/conversations?sort=cost").text)
    classes = [t["class"] or "" for t in doc.find_all("table")]
    assert "conversations sorted-cost" in classes


def test_a_share_link_leaves_the_list_filters_out_unless_asked(
    reviewer: Browser, demo: Any
) -> None:
    data = demo[2]
    cid = data.summaries_for(data.user_id_for(ALICE))[0]["id"]
    doc = Page(
        reviewer.get(f"/conversations/{cid}?from=q%3Dsecret%2Bwords&find=x").text
    )
    (plain,) = doc.find_all("a", **{"aria-label": "Link to this conversation"})
    assert urlsplit(plain["href"] or "").query == ""
    (asked,) = doc.find_all(
        "a", **{"aria-label": "Link to this conversation with your list filters"}
    )
    assert parse_qs(urlsplit(asked["href"] or "").query)["from"] == ["q=secret+words"]


def test_links_drop_empty_fields_and_refresh(reviewer: Browser, demo: Any) -> None:
    data = demo[2]
    cid = data.summaries_for(data.user_id_for(ALICE))[0]["id"]
    doc = Page(
        reviewer.get(f"/conversations/{cid}?find=&highlight=&system=&refresh=1").text
    )
    # Every link but "Refresh from AIRisk" itself.
    links = [a["href"] or "" for a in doc.find_all("a") if a.get("data-key") != "r"]
    own = [link for link in links if link.startswith(f"/conversations/{cid}?")]
    assert own
    for link in own:
        query = urlsplit(link).query
        assert "=&" not in query + "&" and "refresh" not in query, link
