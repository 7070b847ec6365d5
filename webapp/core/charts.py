"""Server-side SVG charts: (stacked) columns, horizontal bars and a heatmap.

The charts are inline SVG markup with no script and no ``style`` attribute
(the CSP allows neither): colours come from CSS classes in ``static/style.css``
that use the theme's variables, so dark mode needs nothing here.

Each chart is two SVGs of the same size in a ``div.chart-frame``: the drawing,
``role="img"`` and labelled by its ``<title>`` and ``<desc>``, and on top of it
a transparent layer of links with tooltips, one per bar, segment or cell. An
image's children are hidden from assistive technology and may not be
interactive, so the link layer is ``aria-hidden`` and its links are for the
mouse only (``tabindex="-1"``); the data table under each chart carries the
same links for the keyboard and screen readers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

#: Drawing size in SVG units; the CSS scales the chart to the page width.
WIDTH = 720
#: At most this many labels along the day axis.
MAX_X_LABELS = 10
#: Heatmap colour steps besides "none" (CSS classes heat-1 .. heat-4).
HEAT_LEVELS = 4


@dataclass(frozen=True)
class Segment:
    """Part of a column: a value, its CSS class, a tooltip and a link."""

    value: float
    css: str
    tip: str
    href: str | None = None


@dataclass(frozen=True)
class Column:
    """One column (a day): its axis label and its segments, bottom first."""

    label: str
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class Bar:
    """One horizontal bar: label, value, the value as shown, tooltip, link."""

    label: str
    value: float
    shown: str
    tip: str
    href: str | None = None


@dataclass(frozen=True)
class Cell:
    """One heatmap cell."""

    value: int
    tip: str
    href: str | None = None


def nice_ceiling(value: float, *, integer: bool = False) -> float:
    """Return a round number at least ``value`` for the top of an axis.

    Integer axes get an even top so the middle tick is a whole number too.
    """
    if value <= 0:
        return 2 if integer else 1
    scale = 10 ** math.floor(math.log10(value))
    steps = (1, 2, 5, 10) if integer else (1, 2, 2.5, 5, 10)
    top = next(s * scale for s in steps if s * scale >= value * (1 - 1e-9))
    if integer:
        top = max(2, math.ceil(top))
        top += top % 2
    return top


def _box(x: float, y: float, w: float, h: float) -> str:
    return f'x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}"'


def _hit(box: str, tip: str, href: str | None) -> str:
    """Return one transparent target of the link layer: a tooltip, maybe a link."""
    target = f'<rect class="hit" {box}><title>{escape(tip)}</title></rect>'
    if href is None:
        return target
    return f'<a href="{escape(href)}" tabindex="-1">{target}</a>'


def _frame(
    chart_id: str,
    title: str,
    desc: str,
    height: float,
    css: str,
    drawing: list[str],
    hits: list[str],
) -> Markup:
    """Return the drawing (the labelled image) and its link layer, framed."""
    view = f'viewBox="0 0 {WIDTH} {height:g}"'
    return Markup(
        f'<div class="chart-frame {css}">'
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {css}" {view} '
        f'role="img" aria-labelledby="{chart_id}-title {chart_id}-desc" '
        f'id="{chart_id}">'
        f'<title id="{chart_id}-title">{escape(title)}</title>'
        f'<desc id="{chart_id}-desc">{escape(desc)}</desc>'
        + "".join(drawing)
        + "</svg>"
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart-links" {view} '
        f'aria-hidden="true" focusable="false">' + "".join(hits) + "</svg></div>"
    )


def _empty(height: float, text: str) -> str:
    return (
        f'<text class="empty-note" x="{WIDTH / 2:g}" y="{height / 2:g}" '
        f'text-anchor="middle">{escape(text)}</text>'
    )


def columns(
    chart_id: str,
    title: str,
    desc: str,
    data: Sequence[Column],
    fmt: Callable[[float], str],
    *,
    integer: bool = False,
    empty: str = "Nothing in this period",
) -> Markup:
    """Return a column chart (stacked when columns have several segments)."""
    height, left, right, top, bottom = 220.0, 64.0, 8.0, 10.0, 26.0
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    highest = max((sum(s.value for s in c.segments) for c in data), default=0)
    ceiling = nice_ceiling(highest, integer=integer)
    drawing: list[str] = []
    hits: list[str] = []
    for tick in (0, ceiling / 2, ceiling):
        y = top + plot_h * (1 - tick / ceiling)
        drawing.append(
            f'<line class="grid" x1="{left:g}" x2="{WIDTH - right:g}" '
            f'y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{left - 6:g}" y="{y + 4:.1f}" '
            f'text-anchor="end">{escape(fmt(tick))}</text>'
        )
    step = max(1, math.ceil(len(data) / MAX_X_LABELS))
    slot = plot_w / max(1, len(data))
    width = max(1.0, slot * 0.8)
    for index, column in enumerate(data):
        x = left + slot * index + (slot - width) / 2
        base = top + plot_h
        shown = [s for s in column.segments if s.value > 0]
        for number, segment in enumerate(shown):
            h = plot_h * segment.value / ceiling
            base -= h
            drawing.append(
                f'<rect class="{escape(segment.css)}" {_box(x, base, width, h)}/>'
            )
            # The top segment's target reaches the top of the plot, so even
            # a day with a tiny bar is easy to point at.
            last = number == len(shown) - 1
            hit_top = top if last else base
            hit_h = base + h - hit_top
            box = _box(left + slot * index, hit_top, slot, hit_h)
            hits.append(_hit(box, segment.tip, segment.href))
        if index % step == 0:
            drawing.append(
                f'<text class="axis" x="{x + width / 2:.1f}" y="{height - 8:g}" '
                f'text-anchor="middle">{escape(column.label)}</text>'
            )
    if highest <= 0:
        drawing.append(_empty(height, empty))
    return _frame(chart_id, title, desc, height, "columns", drawing, hits)


def bars(
    chart_id: str,
    title: str,
    desc: str,
    data: Sequence[Bar],
    *,
    empty: str = "Nothing in this period",
) -> Markup:
    """Return a horizontal bar chart, one labelled row per bar."""
    row, label_w, value_w = 28.0, 210.0, 130.0
    height = max(2, len(data)) * row + 8
    plot_w = WIDTH - label_w - value_w
    highest = max((b.value for b in data), default=0)
    drawing: list[str] = []
    hits: list[str] = []
    for index, bar in enumerate(data):
        y = 4 + index * row
        label = bar.label if len(bar.label) <= 28 else bar.label[:27] + "\u2026"
        w = plot_w * bar.value / highest if highest > 0 else 0
        drawing.append(
            f'<text class="axis label" x="{label_w - 8:g}" y="{y + row / 2 + 4:.1f}" '
            f'text-anchor="end">{escape(label)}</text>'
            f'<rect class="bar" {_box(label_w, y + 4, max(w, 1), row - 8)}/>'
            f'<text class="axis" x="{label_w + w + 6:.1f}" '
            f'y="{y + row / 2 + 4:.1f}">{escape(bar.shown)}</text>'
        )
        hits.append(_hit(_box(0, y, WIDTH, row), bar.tip, bar.href))
    if not data:
        drawing.append(_empty(height, empty))
    return _frame(chart_id, title, desc, height, "bars", drawing, hits)


def heat_level(value: int, highest: int) -> int:
    """Return the colour step (0 = none, up to :data:`HEAT_LEVELS`) of a cell."""
    if value <= 0 or highest <= 0:
        return 0
    return max(1, math.ceil(HEAT_LEVELS * value / highest))


def heatmap(
    chart_id: str,
    title: str,
    desc: str,
    rows: Sequence[tuple[str, Sequence[Cell]]],
    column_labels: Sequence[str],
    *,
    label_every: int = 3,
) -> Markup:
    """Return a grid of cells shaded by value (rows labelled on the left)."""
    left, top, gap = 44.0, 20.0, 2.0
    size = (WIDTH - left) / max(1, len(column_labels))
    height = top + size * len(rows) + 4
    highest = max((c.value for _, cells in rows for c in cells), default=0)
    drawing: list[str] = []
    hits: list[str] = []
    for index, label in enumerate(column_labels):
        if index % label_every == 0:
            drawing.append(
                f'<text class="axis" x="{left + size * index:.1f}" y="{top - 6:g}">'
                f"{escape(label)}</text>"
            )
    for r, (label, cells) in enumerate(rows):
        y = top + size * r
        drawing.append(
            f'<text class="axis" x="{left - 8:g}" y="{y + size / 2 + 4:.1f}" '
            f'text-anchor="end">{escape(label)}</text>'
        )
        for c, cell in enumerate(cells):
            box = _box(left + size * c, y, size - gap, size - gap)
            level = heat_level(cell.value, highest)
            drawing.append(f'<rect class="heat-{level}" {box}/>')
            hits.append(_hit(box, cell.tip, cell.href))
    return _frame(chart_id, title, desc, height, "heatmap", drawing, hits)
