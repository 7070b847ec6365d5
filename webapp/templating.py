"""Jinja filters and globals: dates, numbers, safe links, message rendering."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Flask
from markupsafe import Markup

from .airisk import Message
from .auth import token_hint
from .rendering import render_markdown, visible_text


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
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            if unit == "day" and count == 1:
                return "yesterday"
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"  # pragma: no cover - the loop always returns


def abstime(value: datetime | None) -> str:
    """Return ``value`` as an absolute UTC time, such as 2026-11-28 14:03 UTC."""
    if value is None:
        return "unknown"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def isotime(value: datetime | None) -> str:
    """Return ``value`` as ISO 8601 in UTC, for ``<time datetime>``."""
    return value.astimezone(UTC).isoformat() if value else ""


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


def message_html(message: Message, index: int) -> Markup:
    """Render an AI message as sanitized Markdown with citation links."""
    return render_markdown(
        message.text,
        anchor_prefix=f"c{index}-",
        citation_count=len(message.citations),
    )


def init_app(app: Flask) -> None:
    """Register the filters and globals on ``app``."""
    app.add_template_filter(reltime)
    app.add_template_filter(abstime)
    app.add_template_filter(isotime)
    app.add_template_filter(number)
    app.add_template_filter(money)
    app.add_template_filter(https_url)
    app.add_template_filter(visible_text, "visible")
    app.add_template_global(message_html)
    app.add_template_global(token_hint)
