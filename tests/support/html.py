"""What a user sees: a tiny parse of a page for assertions."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any


class Page(HTMLParser):
    """A tiny DOM summary for assertions on what a user sees."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text_parts: list[str] = []
        self._skip = 0
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        if tag in {"script", "style"}:
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in {"script", "style"} and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.text_parts.append(data)

    @property
    def text(self) -> str:
        """Return the visible text with whitespace collapsed."""
        return " ".join(" ".join(self.text_parts).split())

    def find_all(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        """Return the attributes of every ``tag`` element matching ``attrs``."""
        return [
            a
            for t, a in self.elements
            if t == tag and all(a.get(k.rstrip("_")) == v for k, v in attrs.items())
        ]

    def ids(self) -> list[str]:
        """Return every element id on the page, in order."""
        return [a["id"] for _, a in self.elements if a.get("id")]


def page(response: Any) -> Page:
    """Parse a response body."""
    return Page(response.get_data(as_text=True))


def row_ids(response: Any) -> set[str]:
    """Return the conversation ids a list page links to."""
    ids = set()
    for a in page(response).find_all("a"):
        match = re.fullmatch(r"/conversations/([A-Za-z0-9_-]+)(\?.*)?", a["href"] or "")
        if match:
            ids.add(match.group(1))
    return ids
