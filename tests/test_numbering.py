"""One number per message: the same on screen, in find, links and every export.

A message's number is its position in the conversation as AIRisk returns
it, System messages counted whether shown or not.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from support import ALICE, Browser, Page


@pytest.fixture
def dataset(demo: Any) -> Any:
    return demo[2]


def test_one_message_has_one_number_everywhere(reviewer: Browser, dataset: Any) -> None:
    cid = dataset.long_conversation_id
    messages = dataset.conversation(dataset.user_id_for(ALICE), cid)["messages"]
    assert messages[0]["messageType"] == "System"  # hidden by default
    number = 1502
    target = messages[number - 1]
    assert target["messageType"] == "User"
    mid = target["id"]
    base = f"/conversations/{cid}"

    # Screen: the message's own number, with System hidden.
    screen = reviewer.get(f"{base}?at={quote(mid)}").text
    item = screen[screen.index(f'id="m-{mid}"') :]
    shown = re.search(r'class="number"[^>]*>#(\d+)<', item)
    assert shown and shown[1] == str(number)
    # Facts and the window navigation count the same messages.
    text = Page(screen).text
    total = f"{len(messages):,}"
    assert f"Messages {total}" in text
    assert f"of {total}" in text and f"of {len(messages) - 1:,}" not in text
    # Find.
    found = Page(reviewer.get(f"{base}?find={quote(target['text'][:60])}").text)
    assert f"Message {number:,} (" in found.text or f"Message {number} (" in found.text
    # A "go to message N" link lands on the same message.
    went = reviewer.get(f"{base}?n={number}", allow_redirects=False)
    assert parse_qs(urlsplit(went.headers["Location"]).query)["at"] == [mid]
    # Markdown, JSON and print.
    markdown = reviewer.get(f"{base}/export.md").text
    escaped = re.escape(mid.replace("-", "\\-"))  # Markdown escapes the dashes
    heading = rf"^## {number}\. User \(message {escaped}\)"
    assert re.search(heading, markdown, re.M)
    document = json.loads(reviewer.get(f"{base}/export.json").text)
    (entry,) = [m for m in document["conversation"]["messages"] if m["id"] == mid]
    assert entry["number"] == number
    printed = reviewer.get(f"{base}/export.html").text
    assert re.search(rf"#{number}</span>[^#]*?{re.escape(mid)}", printed)


def test_go_to_a_hidden_system_message_shows_it(
    reviewer: Browser, dataset: Any
) -> None:
    cid = dataset.long_conversation_id
    messages = dataset.conversation(dataset.user_id_for(ALICE), cid)["messages"]
    went = reviewer.get(f"/conversations/{cid}?n=1", allow_redirects=False)
    query = parse_qs(urlsplit(went.headers["Location"]).query)
    assert query["at"] == [messages[0]["id"]] and query["system"] == ["1"]


def test_export_this_range_and_print_this_window(
    reviewer: Browser, dataset: Any
) -> None:
    cid = dataset.long_conversation_id
    messages = dataset.conversation(dataset.user_id_for(ALICE), cid)["messages"]
    first, last = messages[9]["id"], messages[13]["id"]  # numbers 10 to 14
    page = Page(reviewer.get(f"/conversations/{cid}?highlight={first}..{last}").text)
    links = {a.get("aria-label") or "": a["href"] or "" for a in page.find_all("a")}
    markdown = reviewer.get(links["Export the highlighted range as Markdown"]).text
    assert re.findall(r"^## (\d+)\.", markdown, re.M) == ["10", "11", "12", "13", "14"]
    assert "- Highlighted: `messages 10-14`" in markdown
    assert "- Messages: `10-14 of" in markdown
    for label in ("Flag", "Tags", "Tokens", "Cost", "Exported by", "Dashboard URL"):
        assert f"- {label}: `" in markdown, label
    assert "[highlighted]" in markdown and "Highlighted as evidence" in markdown
    document = json.loads(
        reviewer.get(links["Export the highlighted range as JSON"]).text
    )
    assert document["evidence"]["highlight"] == {"from": 10, "to": 14}
    assert [m["number"] for m in document["conversation"]["messages"]] == list(
        range(10, 15)
    )
    assert f"highlight={first}..{last}" in document["evidence"]["url"]
    printed = Page(reviewer.get(links["Print the highlighted range"]).text)
    assert len(printed.find_all("li", class_="message user highlighted")) == 3
    # The whole conversation's exports mark the range too.
    whole = Page(reviewer.get(links["Print or save as PDF"]).text)
    assert len(whole.find_all("li", class_="message user highlighted")) == 3
    assert len(whole.find_all("strong", class_="highlight-mark")) == 5

    later = Page(reviewer.get(f"/conversations/{cid}?start=400").text)
    (window,) = [
        a["href"]
        for a in later.find_all("a")
        if a.get("aria-label") == "Print this window"
    ]
    shown = re.findall(r'class="number">#(\d+)<', reviewer.get(window or "").text)
    assert shown[0] == "402" and len(shown) == 200
