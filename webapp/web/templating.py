"""Jinja filters and globals: dates, numbers, safe links, message rendering."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from flask import Flask
from markupsafe import Markup, escape

from ..airisk import ConversationSummary, Message
from ..core.listing import calendar_days
from ..core.rendering import render_markdown, set_render_cache_bytes, visible_text
from .auth import token_expiry_minutes, token_hint
from .preferences import current_theme
from .service import AgentNames


def reltime(value: datetime | None, now: datetime | None = None) -> str:
    """Return ``value`` relative to now, such as "3 hours ago"."""
    if value is None:
        return "unknown"
    now = now or datetime.now(UTC)
    seconds = int((now - value).total_seconds())
    if seconds < -60:
        return "in the future"
    if seconds < 60:
        return "just now"
    # Days are calendar days, as in the list's groups: 23:00 seen at 01:00
    # is "yesterday", and 38 hours ago at 10:00 is "2 days ago".
    days = calendar_days(value, now)
    if days == 1:
        return "yesterday"
    if days > 1:
        return f"{days} days ago"
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"  # pragma: no cover - the loop always returns


def abstime(value: datetime | None, seconds: bool = False) -> str:
    """Return ``value`` as an absolute UTC time, such as 2026-11-28 14:03 UTC."""
    if value is None:
        return "unknown"
    # isoformat is a third of strftime's cost; a list page calls this per row.
    text = _utc(value).isoformat(" ", "seconds" if seconds else "minutes")
    return text[:-6] + " UTC"  # "+00:00" -> " UTC"


def isotime(value: datetime | None) -> str:
    """Return ``value`` as ISO 8601 in UTC, for ``<time datetime>``."""
    return _utc(value).isoformat() if value else ""


def _utc(value: datetime) -> datetime:
    # Parsed AIRisk dates are already UTC: skip the conversion for them.
    return value if value.tzinfo is UTC else value.astimezone(UTC)


def number(value: int | None) -> str:
    """Return an integer with thousands separators, or an en dash."""
    return f"{value:,}" if value is not None else "\u2013"


def money(value: float | None) -> str:
    """Return a cost in US dollars (AIRisk reports costs in USD)."""
    if value is None:
        return "\u2013"
    return f"${value:,.2f}" if value >= 1 else f"${value:.4f}"


def https_url(value: str) -> str | None:
    """Return ``value`` if it is an https URL safe to link to, else None."""
    value = value.strip()
    if value.lower().startswith("https://") and not any(
        ch.isspace() or ord(ch) < 32 for ch in value
    ):
        return value
    return None


def message_html(message: Message, index: int, find: str = "") -> Markup:
    """Render an AI message as sanitized Markdown with citation links."""
    return render_markdown(
        message.text,
        anchor_prefix=f"c{index}-",
        citation_count=len(message.citations),
        find=find,
    )


def mark(text: str, needle: str) -> Markup:
    """Escape ``text`` and wrap each case-insensitive match of ``needle``."""
    if not needle:
        return escape(text)
    pattern = re.compile(re.escape(needle), re.IGNORECASE)
    out = Markup()
    last = 0
    for match in pattern.finditer(text):
        out += escape(text[last : match.start()])
        out += Markup("<mark>") + escape(match.group(0)) + Markup("</mark>")
        last = match.end()
    return out + escape(text[last:])


def segment(value: str) -> str:
    """Return ``value`` encoded as one URL path segment (nothing left raw)."""
    return quote(value, safe="")


def refresh_url(full_path: str) -> str:
    """Return this page's path with ``refresh=1`` (bypass every cache)."""
    parts = urlsplit(full_path)
    args = [(k, v) for k, v in parse_qsl(parts.query) if k not in {"refresh", "format"}]
    return parts.path + "?" + urlencode([*args, ("refresh", "1")])


class ListRows:
    """``list_rows(rows, names, now, detail_prefix, from_suffix)`` in templates.

    Renders each row with ``conversations/_row.html`` and keeps the result by
    the row macro's arguments (the row, its agent's name, its relative time
    and the two link parts), which are everything a row shows: a list seen
    again (a refresh, back from a conversation, a shared link, an expired
    cache with unchanged data) renders none of its rows again. As with
    rendered Markdown, equal data gives equal HTML whoever asks. When
    templates auto-reload (debug), nothing is kept, so an edited row shows
    at once. The bound is on entries, so only rows whose text is short are
    kept: AIRisk sends titles and tags of any length, and 4,096 rows with
    100 KB titles would hold gigabytes.
    """

    def __init__(self, app: Flask, size: int) -> None:
        self._env = app.jinja_env
        self._cached = functools.lru_cache(maxsize=size)(self._render)

    def _render(
        self,
        row: ConversationSummary,
        agent: str,
        rel: str,
        prefix: str,
        suffix: str,
        state: str = "",
        select: bool = False,
    ) -> Markup:
        module: Any = self._env.get_template("conversations/_row.html").module
        return cast(
            Markup,
            module.conversation_row(row, agent, rel, prefix, suffix, state, select),
        )

    def __call__(
        self,
        rows: Iterable[ConversationSummary],
        names: AgentNames,
        now: datetime,
        detail_prefix: str,
        from_suffix: str,
        states: dict[str, str] | None = None,
        select: bool = False,
    ) -> Markup:
        keep = not self._env.auto_reload
        # The review state is part of the row (and of its cache key); None:
        # the page shows no review column.
        return Markup("").join(
            (self._cached if keep and _keepable(row, names) else self._render)(
                row,
                names[row.agent_id],
                reltime(row.updated, now),
                detail_prefix,
                from_suffix,
                "" if states is None else states.get(row.id, "new"),
                select,
            )
            for row in rows
        )

    def cache_info(self) -> Any:
        """Return the hits, misses and size of the kept rows."""
        return self._cached.cache_info()


#: Characters of text (title, tags, agent name) above which a row is not kept.
_ROW_KEEP_CHARS = 1024


def _keepable(row: ConversationSummary, names: AgentNames) -> bool:
    """Return whether ``row`` is short enough to keep rendered."""
    size = len(row.title) + len(names[row.agent_id])
    return size + sum(len(tag) for tag in row.metadata) <= _ROW_KEEP_CHARS


def init_app(app: Flask) -> None:
    """Register the filters and globals on ``app``."""
    app.add_template_filter(reltime)
    app.add_template_filter(abstime)
    app.add_template_filter(isotime)
    app.add_template_filter(number)
    app.add_template_filter(money)
    app.add_template_filter(https_url)
    app.add_template_filter(visible_text, "visible")
    app.add_template_filter(mark)
    app.add_template_filter(refresh_url)
    app.add_template_filter(segment)
    app.add_template_global(message_html)
    # About half a KiB of HTML per row kept, at most a few KiB (_keepable).
    app.add_template_global(ListRows(app, app.config["LIST_ROW_CACHE"]), "list_rows")
    app.add_template_global(token_hint)
    app.add_template_global(token_expiry_minutes)
    # The cache is the process's (every app in it renders the same way).
    set_render_cache_bytes(app.config["RENDER_CACHE_BYTES"])
    app.context_processor(lambda: {"theme": current_theme()})
