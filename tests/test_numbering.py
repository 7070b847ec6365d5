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
from conftest import ALICE, Browser, Page


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
