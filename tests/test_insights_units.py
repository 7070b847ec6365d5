"""Unit tests of the insights' pure parts: periods, numbers and SVG charts."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from webapp.airisk import ConversationSummary
from webapp.core import charts, exports, stats
from webapp.core.stats import InsightsQuery, Period

TODAY = date(2026, 11, 28)
SVG = "{http://www.w3.org/2000/svg}"


def row(n: int, updated: datetime | None, **fields: Any) -> ConversationSummary:
    values: dict[str, Any] = {
        "id": f"c{n}",
        "title": f"Conversation {n}",
        "user_id": "u1",
        "agent_id": "a1",
        "created": updated,
        "updated": updated,
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "cost": 0.1,
        "flagged": False,
        "metadata": (),
    }
    values.update(fields)
    return ConversationSummary(**values)


def at(day: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


# -- periods -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "start", "end", "preset"),
    [
        ({}, date(2026, 10, 30), TODAY, 30),
        ({"days": "7"}, date(2026, 11, 22), TODAY, 7),
        ({"days": "90"}, date(2026, 8, 31), TODAY, 90),
        ({"days": "13"}, date(2026, 10, 30), TODAY, 30),
        ({"days": "-7"}, date(2026, 10, 30), TODAY, 30),
        (
            {"from": "2026-11-01", "to": "2026-11-03"},
            date(2026, 11, 1),
            date(2026, 11, 3),
            None,
        ),
        (
            {"from": "2026-11-03", "to": "2026-11-01"},
            date(2026, 11, 1),
            date(2026, 11, 3),
            None,
        ),
        ({"from": "2026-11-10"}, date(2026, 11, 10), TODAY, None),
        ({"from": "2026-12-05"}, date(2026, 12, 5), date(2026, 12, 5), None),
        ({"to": "2026-11-10"}, date(2026, 10, 12), date(2026, 11, 10), None),
        ({"from": "bogus", "days": "7"}, date(2026, 11, 22), TODAY, 7),
        (
            {"from": "2026-11-01", "to": "2026-11-03", "days": "7"},
            date(2026, 11, 1),
            date(2026, 11, 3),
            None,
        ),
    ],
)
def test_period_from_args(
    args: dict[str, str], start: date, end: date, preset: int | None
) -> None:
    period = Period.from_args(args, TODAY)
    assert (period.start, period.end, period.preset) == (start, end, preset)
    assert Period.from_args(period.args(), TODAY) == period, "args() round-trips"


def test_a_long_custom_range_is_shortened() -> None:
    period = Period.from_args({"from": "2020-01-01", "to": "2026-11-28"}, TODAY)
    assert period.shortened and period.length == stats.MAX_DAYS
    assert period.end == TODAY


def test_the_period_is_whole_utc_days() -> None:
    period = Period(date(2026, 11, 10), date(2026, 11, 12), None)
    assert period.days() == [date(2026, 11, d) for d in (10, 11, 12)]
    assert period.contains(datetime(2026, 11, 12, 23, 59, 59, tzinfo=UTC))
    assert not period.contains(datetime(2026, 11, 13, 0, 0, tzinfo=UTC))
    assert period.contains(datetime(2026, 11, 10, 0, 0, tzinfo=UTC))
    assert not period.contains(datetime(2026, 11, 9, 23, 59, 59, tzinfo=UTC))
    # 01:00 at +02:00 on the 13th is 23:00 UTC on the 12th.
    plus_two = timezone(timedelta(hours=2))
    assert period.contains(datetime(2026, 11, 13, 1, 0, tzinfo=plus_two))
    assert not period.contains(None)


def test_query_args_leave_defaults_out_and_drop_bad_agents() -> None:
    assert InsightsQuery.from_args({}, TODAY).args() == {}
    query = InsightsQuery.from_args({"days": "7", "agent": "a-1"}, TODAY)
    assert query.args() == {"days": "7", "agent": "a-1"}
    assert query.args(refresh="1", agent=None) == {"days": "7", "refresh": "1"}
    assert InsightsQuery.from_args({"agent": "../x"}, TODAY).agent == ""


# -- numbers -------------------------------------------------------------------------


def test_totals_count_known_values_and_say_what_is_missing() -> None:
    rows = [
        row(1, at(27), cost=0.1, flagged=True),
        row(2, at(27), cost=0.2, flagged=None),
        row(3, at(28), total_tokens=None, prompt_tokens=None, completion_tokens=None),
        row(4, at(28), cost=None),
        row(5, at(1), cost=5.0),  # before the period
        row(6, None),  # no date: in no period
    ]
    result = stats.compute(rows, Period.last(7, TODAY))
    t = result.totals
    assert t.conversations == 4
    assert (t.prompt_tokens, t.completion_tokens, t.total_tokens) == (30, 15, 45)
    assert t.without_tokens == 1 and t.without_cost == 1
    assert t.cost == 0.4  # exactly: summed with fsum, then rounded
    assert (t.flagged, t.flag_unknown, t.flagged_share) == (1, 1, 0.25)
    assert result.undated == 1
    record = exports.insights_record(result, {})
    assert record["totals"]["messages"] is None
    assert record["totals"]["messagesNote"] == "not known from summaries"


def test_an_empty_period_has_zeros_and_no_share() -> None:
    result = stats.compute([], Period.last(7, TODAY))
    assert result.totals.conversations == 0 and result.totals.flagged_share is None
    assert result.top_by_conversations == [] and len(result.daily) == 7
    assert exports.insights_record(result, {})["totals"]["flaggedShare"] is None


def test_top_lists_rank_by_value_then_key_and_skip_zeros() -> None:
    assert stats.top({"b": 2, "a": 2, "c": 3, "d": 0}) == [
        stats.Ranked("c", 3),
        stats.Ranked("a", 2),
        stats.Ranked("b", 2),
    ]
    assert len(stats.top({str(n): n + 1 for n in range(9)})) == stats.TOP_N


def test_agents_days_hours_and_the_heatmap() -> None:
    rows = [
        row(1, at(23, 9), agent_id="a1", total_tokens=100, cost=1.0, flagged=True),
        row(2, at(23, 9, 30), agent_id="a2", total_tokens=300, cost=0.5),
        row(3, at(24, 17), agent_id="a2", total_tokens=None, cost=None),
        row(4, at(24, 17), agent_id="a3", total_tokens=50, cost=2.0),
    ]
    result = stats.compute(rows, Period.last(7, TODAY))

    def keys(items: list[stats.Ranked]) -> list[tuple[Any, float]]:
        return [(i.key, i.value) for i in items]

    assert keys(result.top_by_conversations) == [("a2", 2), ("a1", 1), ("a3", 1)]
    assert keys(result.top_by_tokens) == [("a2", 300), ("a1", 100), ("a3", 50)]
    assert keys(result.top_by_cost) == [("a3", 2.0), ("a1", 1.0), ("a2", 0.5)]
    assert keys(result.top_flagged) == [("a1", 1)]
    assert keys(result.busiest_days) == [
        (date(2026, 11, 23), 2),
        (date(2026, 11, 24), 2),
    ]
    assert keys(result.busiest_hours) == [(9, 2), (17, 2)]
    # 2026-11-23 is a Monday (weekday 0).
    assert result.heatmap[0][9] == 2 and result.heatmap[1][17] == 2
    assert sum(map(sum, result.heatmap)) == 4
    assert [a.share for a in result.agents] == [0.5, 0.25, 0.25]
    day = {d.day: d for d in result.daily}[date(2026, 11, 23)]
    assert (day.conversations, day.flagged, day.tokens, day.cost) == (2, 1, 400, 1.5)
    only = stats.compute(rows, Period.last(7, TODAY), agent="a2")
    assert only.totals.conversations == 2 and only.agent == "a2"


def test_chart_rows_follow_the_declared_columns() -> None:
    result = stats.compute([row(1, at(28))], Period.last(7, TODAY))
    for chart, fields in exports.CHARTS.items():
        rows = exports.chart_rows(result, chart, {"a1": "Agent One"})
        assert rows and all(tuple(r) == fields for r in rows), chart
    with pytest.raises(KeyError):
        exports.chart_rows(result, "pie", {})


# -- charts ---------------------------------------------------------------------------


def parse(markup: str) -> ET.Element:
    """Parse a chart: it must be well-formed XML (escaping done right)."""
    return ET.fromstring(markup)


def drawing_and_links(markup: str) -> tuple[ET.Element, ET.Element]:
    frame = parse(markup)
    assert frame.tag == "div" and "chart-frame" in frame.get("class", "")
    drawing, layer = list(frame)
    return drawing, layer


@pytest.mark.parametrize(
    ("value", "integer", "ceiling"),
    [
        (0, False, 1),
        (0, True, 2),
        (1, True, 2),
        (7, True, 10),
        (11, True, 20),
        (0.3, False, 0.5),
        (2.4, False, 2.5),
        (120, False, 200),
        (5, True, 6),
    ],
)
def test_nice_ceiling(value: float, integer: bool, ceiling: float) -> None:
    assert charts.nice_ceiling(value, integer=integer) == pytest.approx(ceiling)


def test_columns_are_a_labelled_image_with_a_link_layer() -> None:
    data = [
        charts.Column(
            "Nov 1",
            (
                charts.Segment(3, "seg-other", "3 <b>", "/l?a=1&b=2"),
                charts.Segment(1, "seg-flagged", "1 flagged", "/l?flagged=1"),
            ),
        ),
        charts.Column("Nov 2", (charts.Segment(0, "seg-other", "none", "/x"),)),
    ]
    markup = str(
        charts.columns("c1", "Per day", "A description", data, str, integer=True)
    )
    assert "style=" not in markup and "<b>" not in markup
    drawing, layer = drawing_and_links(markup)
    assert drawing.get("role") == "img"
    assert drawing.get("aria-labelledby") == "c1-title c1-desc"
    assert drawing.find(f"{SVG}title").text == "Per day"  # type: ignore[union-attr]
    assert drawing.find(f"{SVG}desc").text == "A description"  # type: ignore[union-attr]
    rects = drawing.findall(f"{SVG}rect")
    assert [r.get("class") for r in rects] == ["seg-other", "seg-flagged"]
    # Stacked: the flagged segment sits on the other, a third of its height,
    # and the stack reaches 4 of the axis' 4.
    heights = [float(r.get("height", 0)) for r in rects]
    assert heights[0] == pytest.approx(3 * heights[1], rel=0.01)
    assert float(rects[1].get("y", 0)) + heights[1] == pytest.approx(
        float(rects[0].get("y", 0)), abs=0.2
    )
    assert layer.get("aria-hidden") == "true"
    links = layer.findall(f"{SVG}a")
    assert [a.get("href") for a in links] == ["/l?a=1&b=2", "/l?flagged=1"]
    assert all(a.get("tabindex") == "-1" for a in links)
    assert links[0].find(f"{SVG}rect/{SVG}title").text == "3 <b>"  # type: ignore[union-attr]


def test_an_empty_chart_says_so() -> None:
    markup = str(charts.columns("c2", "T", "D", [], str))
    assert "Nothing in this period" in markup
    assert "Nobody" in str(charts.bars("c3", "T", "D", [], empty="Nobody"))


def test_bars_scale_to_the_largest_and_shorten_long_labels() -> None:
    data = [
        charts.Bar("A" * 40, 10, "10", "tip", "/a"),
        charts.Bar("B", 5, "5", "tip", None),
    ]
    drawing, layer = drawing_and_links(str(charts.bars("b1", "T", "D", data)))
    widths = [float(r.get("width", 0)) for r in drawing.findall(f"{SVG}rect")]
    assert widths[0] == pytest.approx(2 * widths[1])
    labels = [t.text for t in drawing.findall(f"{SVG}text")]
    assert "A" * 27 + "\u2026" in labels
    assert len(layer.findall(f"{SVG}a")) == 1, "no link without an href"


def test_heatmap_cells_are_shaded_in_steps() -> None:
    assert [charts.heat_level(v, 8) for v in (0, 1, 2, 3, 8)] == [0, 1, 1, 2, 4]
    rows = [("Mon", [charts.Cell(v, f"{v}", "/p") for v in (0, 4, 8)])]
    drawing, layer = drawing_and_links(
        str(charts.heatmap("h1", "T", "D", rows, ["00", "01", "02"]))
    )
    classes = [r.get("class") for r in drawing.findall(f"{SVG}rect")]
    assert classes == ["heat-0", "heat-2", "heat-4"]
    assert len(layer.findall(f"{SVG}a")) == 3
