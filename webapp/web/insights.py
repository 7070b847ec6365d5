"""Insights: totals, top-N and charts over the conversation history.

Built on the same whole-history scan as search (and its per-token cache), so
opening the page again within ``AIRISK_SCAN_TTL`` costs no AIRisk call. Every
state is in the query string (``days`` or ``from``/``to``, ``agent``);
``?format=json`` (or ``/insights.json``) gives every number as JSON and
``/insights/<chart>.csv`` each chart's data.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any

from flask import Blueprint, Response, render_template, request, url_for
from flask.typing import ResponseReturnValue
from markupsafe import Markup

from ..airisk.scans import ScanProgress
from ..airisk.service import History
from ..core import charts, exports, stats
from ..core.listing import ListQuery
from ..core.rendering import visible_text
from ..core.stats import WEEKDAYS, Day, Insights, InsightsQuery
from . import evidence
from .auth import signed_in_token, token_required
from .scanning import (
    json_requested,
    refresh_requested,
    result_or_stream,
    stopped_history,
    stream_scan,
)
from .service import agent_names, request_agents, service
from .templating import money, number

bp = Blueprint("insights", __name__)

#: Shown on each heatmap cell: why it opens the whole period.
HEATMAP_LINK_NOTE = (
    "The conversation list cannot filter by weekday or hour: "
    "this opens every conversation of the period."
)


def _query() -> InsightsQuery:
    # Days are UTC, like every date on the dashboard.
    return InsightsQuery.from_args(request.args, datetime.now(UTC).date())


def _insights_url(**changes: Any) -> str:
    """Return this page's URL with its normalised state and ``changes``."""
    # Never the raw query: a key such as "endpoint" or "_scheme" would reach
    # url_for as its own keyword argument. (No refresh, format or stop.)
    args: dict[str, Any] = _query().args()
    args.update((k, v) for k, v in changes.items() if v is not None)
    return url_for("insights.index", **args)


def _history(query: InsightsQuery, *, stream: bool) -> History | Response:
    """Return the scanned history, or a page streaming a first scan's progress."""
    token = signed_in_token()
    upstream = service()
    stop_id = request.args.get("stop", "")
    if stop_id and stream:
        # "Stop" shows what the stopped scan read; it never starts one.
        stopped = upstream.stop(token, stop_id)
        history = stopped_history(stopped, stop_id, query.agent)
        if history is not None:
            return history
        page = render_template("insights/scan_none.html", url=_insights_url())
        return Response(page, mimetype="text/html")
    found = upstream.scan_job(token, agent_id=query.agent, fresh=refresh_requested())
    return result_or_stream(found, wait=not stream, stream=_stream)


def _stream(
    first: ScanProgress, steps: Iterator[ScanProgress], job_id: str
) -> Response:
    """Stream the first scan's progress, then refresh to the finished page."""
    page = render_template(
        "insights/scan_head.html", stop_url=_insights_url(stop=job_id, refresh=None)
    )

    def progress(step: ScanProgress) -> str:
        return render_template("insights/scan_progress.html", progress=step)

    return stream_scan(
        page,
        first,
        steps,
        progress=progress,
        folder="insights",
        done_url=_insights_url(),
    )


# -- links to the conversation list -------------------------------------------


class Links:
    """URLs of the conversation lists that the numbers of a query summarise."""

    def __init__(self, query: InsightsQuery) -> None:
        self.query = query

    def _list(self, start: date, end: date, agent: str, flagged: bool) -> str:
        # The list's own state class, so the names are the list's (from, to,
        # agent, flagged) and a renamed parameter breaks here too.
        state = ListQuery(agent=agent, start=start, end=end, flagged=flagged)
        args: dict[str, Any] = state.args()
        return url_for("conversations.index", **args)

    def day(self, day: date, flagged: bool = False) -> str:
        """Return the list of one day's conversations."""
        return self._list(day, day, self.query.agent, flagged)

    def period(self, flagged: bool = False) -> str:
        """Return the list of the whole period."""
        period = self.query.period
        return self._list(period.start, period.end, self.query.agent, flagged)

    def agent(self, agent_id: str, flagged: bool = False) -> str:
        """Return the list of one agent's conversations in the period."""
        period = self.query.period
        return self._list(period.start, period.end, agent_id, flagged)


# -- charts ---------------------------------------------------------------------


def _day_label(day: date) -> str:
    return f"{day:%b} {day.day}"


def _percent(share: float | None) -> str:
    return "\u2013" if share is None else f"{share * 100:.1f}%"


def _agent_label(agent_id: str, names: dict[str, str]) -> str:
    return names.get(agent_id) or f"Unknown agent ({agent_id})"


def _chart_label(agent_id: str, names: dict[str, str]) -> str:
    # SVG text has no |visible filter: show control characters the same way.
    return visible_text(_agent_label(agent_id, names))


def _conversation_columns(insights: Insights, links: Links) -> list[charts.Column]:
    """Return a column per day: flagged conversations stacked on the others."""
    return [
        charts.Column(
            _day_label(d.day),
            (
                charts.Segment(
                    d.conversations - d.flagged,
                    "seg-other",
                    f"{d.day}: {d.conversations:,} conversations, "
                    f"{d.flagged:,} flagged. Opens that day's list.",
                    links.day(d.day),
                ),
                charts.Segment(
                    d.flagged,
                    "seg-flagged",
                    f"{d.day}: {d.flagged:,} flagged. Opens that day's flagged list.",
                    links.day(d.day, flagged=True),
                ),
            ),
        )
        for d in insights.daily
    ]


def _daily_columns(
    insights: Insights,
    links: Links,
    value: Callable[[Day], float],
    shown: Callable[[Day], str],
) -> list[charts.Column]:
    """Return a single-bar column per day, each opening that day's list."""
    return [
        charts.Column(
            _day_label(d.day),
            (
                charts.Segment(
                    value(d),
                    "bar",
                    f"{d.day}: {shown(d)}. Opens that day's list.",
                    links.day(d.day),
                ),
            ),
        )
        for d in insights.daily
    ]


def _heat_rows(insights: Insights, links: Links) -> list[tuple[str, list[charts.Cell]]]:
    """Return the heatmap's rows: a weekday and its 24 hours."""
    return [
        (
            WEEKDAYS[weekday],
            [
                charts.Cell(
                    count,
                    f"{WEEKDAYS[weekday]} {hour:02d}:00\u2013{hour:02d}:59 UTC: "
                    f"{count:,} conversations. {HEATMAP_LINK_NOTE}",
                    links.period(),
                )
                for hour, count in enumerate(hours)
            ],
        )
        for weekday, hours in enumerate(insights.heatmap)
    ]


def _agent_bars(
    insights: Insights, links: Links, names: dict[str, str]
) -> list[charts.Bar]:
    """Return a bar per agent, largest first, each opening the agent's list."""
    return [
        charts.Bar(
            _chart_label(a.agent_id, names),
            a.conversations,
            f"{a.conversations:,} ({_percent(a.share)})",
            f"{_chart_label(a.agent_id, names)}: {a.conversations:,} conversations "
            f"({_percent(a.share)}). Opens this agent's list for the period.",
            links.agent(a.agent_id),
        )
        for a in insights.agents
    ]


def _charts(
    insights: Insights, links: Links, names: dict[str, str]
) -> dict[str, Markup]:
    """Return the page's SVG charts by name (the names of :data:`exports.CHARTS`)."""
    span = f"{insights.period.start.isoformat()} to {insights.period.end.isoformat()}"
    conversations = _conversation_columns(insights, links)
    tokens = _daily_columns(
        insights, links, lambda d: d.tokens, lambda d: f"{d.tokens:,} tokens"
    )
    cost = _daily_columns(insights, links, lambda d: d.cost, lambda d: money(d.cost))
    heat_rows = _heat_rows(insights, links)
    agent_bars = _agent_bars(insights, links, names)
    return {
        "conversations": charts.columns(
            "chart-conversations",
            "Conversations per day",
            f"Conversations last updated each day (UTC), {span}, flagged ones "
            "stacked on top. The data table below has the numbers.",
            conversations,
            lambda v: number(int(v)),
            integer=True,
        ),
        "tokens": charts.columns(
            "chart-tokens",
            "Tokens per day",
            f"Total tokens of the conversations last updated each day, {span}.",
            tokens,
            lambda v: number(int(v)),
            integer=True,
        ),
        "cost": charts.columns(
            "chart-cost",
            "Cost per day (USD)",
            f"Cost of the conversations last updated each day, {span}.",
            cost,
            lambda v: money(v) if v else "$0",
        ),
        "heatmap": charts.heatmap(
            "chart-heatmap",
            "Conversations by weekday and hour (UTC)",
            f"How many conversations were last updated in each hour of each "
            f"weekday, {span}; darker is busier.",
            heat_rows,
            [f"{hour:02d}" for hour in range(24)],
        ),
        "agents": charts.bars(
            "chart-agents",
            "Share by agent",
            f"Conversations per agent, {span}, largest first.",
            agent_bars,
        ),
    }


# -- views --------------------------------------------------------------------------


def _json(
    insights: Insights, names: dict[str, str], history: History, query: InsightsQuery
) -> dict[str, Any]:
    return {
        "query": query.args(),
        "fetchedAt": history.fetched_at.isoformat(),
        "complete": history.complete,
        "scanned": len(history.rows),
        **exports.insights_record(insights, names),
    }


@bp.get("/insights")
@token_required
def index() -> ResponseReturnValue:
    """Show totals, top lists and charts for a period (scanning if needed)."""
    if json_requested():
        return data()
    query = _query()
    history = _history(query, stream=True)
    if isinstance(history, Response):
        return history
    names = agent_names(signed_in_token())
    insights = stats.compute(history.rows, query.period, query.agent)
    links = Links(query)
    return render_template(
        "insights/index.html",
        query=query,
        insights=insights,
        history=history,
        agents=request_agents(signed_in_token()),
        presets=stats.PRESETS,
        top_n=stats.TOP_N,
        charts=_charts(insights, links, names),
        links=links,
        agent_label=lambda agent_id: _agent_label(agent_id, names),
        percent=_percent,
        weekdays=WEEKDAYS,
        messages_unknown=stats.MESSAGES_UNKNOWN,
        fetched_at=history.fetched_at,
        scan_max=service().policy.max_history,
    )


@bp.get("/insights.json")
@token_required
def data() -> ResponseReturnValue:
    """Return every number of the page as JSON (scanning first if needed)."""
    query = _query()
    history = _history(query, stream=False)
    assert isinstance(history, History)
    names = agent_names(signed_in_token())
    insights = stats.compute(history.rows, query.period, query.agent)
    body = json.dumps(_json(insights, names, history, query), indent=2)
    # Signed like every export; the closing brace follows the signature.
    return evidence.signed(
        body[: -len("\n}")],
        "insights-json",
        request.full_path.rstrip("?"),
        mimetype="application/json",
        filename=None,
        at=evidence.now_iso(),
        who=evidence.exporter(),
    )


@bp.get("/insights/<any(conversations, tokens, cost, heatmap, agents):chart>.csv")
@token_required
def chart_csv(chart: str) -> Response:
    """Return one chart's data as CSV."""
    query = _query()
    history = _history(query, stream=False)
    assert isinstance(history, History)
    insights = stats.compute(history.rows, query.period, query.agent)
    rows = exports.chart_rows(insights, chart, agent_names(signed_in_token()))
    body = exports.csv_document(exports.CHARTS[chart], rows)
    period = query.period
    name = f"insights-{chart}-{period.start}-{period.end}.csv"
    return evidence.signed(
        body,
        "insights-csv",
        request.full_path.rstrip("?"),
        mimetype="text/csv",
        filename=name,
        at=evidence.now_iso(),
        who=evidence.exporter(),
    )
