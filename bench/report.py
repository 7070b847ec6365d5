"""Turn benchmark results into the targets check and Markdown tables."""

from __future__ import annotations

from typing import Any

MAX_CONNECTIONS = 8  # one per worker thread (gunicorn --threads 8)
CACHE_SPEEDUP = 10.0


def _cell(summary: dict[str, dict[str, float]], key: str, digits: int = 1) -> str:
    """Return ``median (min-max)`` of one result, or a dash if it is missing."""
    found = summary.get(key)
    if found is None:
        return "–"
    med, low, high = found["median"], found["min"], found["max"]
    if low == high:
        return f"{med:.{digits}f}"
    return f"{med:.{digits}f} ({low:.{digits}f}–{high:.{digits}f})"


def _errors(runs: list[dict[str, Any]], section: str) -> int:
    """Add up every error count under ``section`` across runs."""
    total = 0

    def walk(node: Any) -> None:
        nonlocal total
        if isinstance(node, dict):
            for key, value in node.items():
                if key in {"errors", "non_200", "socket_errors"} and isinstance(
                    value, int
                ):
                    total += max(value, 0)
                else:
                    walk(value)

    for run in runs:
        walk(run.get(section, {}))
    return total


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Check the issue's targets; each row says the value and whether it is met."""
    trips = results["round_trips"]
    summary = results["summary"]
    rows: list[dict[str, Any]] = []

    def add(name: str, target: str, value: Any, met: bool) -> None:
        rows.append({"name": name, "target": target, "value": value, "met": met})

    for page in ("list", "conversation", "long_conversation"):
        value = trips[f"{page}_calls_per_view"]
        add(f"upstream calls per {page} view", "1", value, value == 1)
    views = trips["dashboard_connections"]["views"]
    connections = trips["dashboard_connections"]["connections_total"]
    add(
        f"upstream TCP connections for {views} list views (dashboard)",
        f"<= {MAX_CONNECTIONS} (one per worker thread)",
        connections,
        connections <= MAX_CONNECTIONS,
    )
    for page in ("list", "conversation", "long_conversation"):
        key = f"cache.{page}.speedup_p50"
        if key in summary:
            value = round(summary[key]["median"], 1)
            add(
                f"cached repeat {page} view vs first (150 ms upstream), x faster",
                f">= {CACHE_SPEEDUP:g}",
                value,
                value >= CACHE_SPEEDUP,
            )
    errors = _errors(results["runs"], "throughput")
    add("throughput errors (non-200 + socket)", "0", errors, errors == 0)
    timing = sum(_errors(results["runs"], key) for key in ("page", "large", "cache"))
    add("errors in timed page views", "0", timing, timing == 0)
    return rows


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def markdown(results: dict[str, Any]) -> str:
    """Render the results as Markdown tables (median, min–max over runs)."""
    s = results["summary"]
    settings = results["settings"]
    m = results["machine"]
    parts = [
        "# Benchmark results\n",
        f"{settings['runs']} run(s); cells are median (min–max) over runs; "
        "times in ms unless marked.\n",
        _table(
            ["machine", ""],
            [
                ["code", m.get("code", "unknown")],
                ["nproc", str(m["nproc"])],
                ["CPU", m["cpu"]],
                ["Python", m["python"]],
                ["gunicorn", m["gunicorn"]],
                ["wrk", m["wrk"]],
                ["date (UTC)", m["date"]],
                [
                    "load average (start, end)",
                    f"{m['loadavg_start']:.2f}, {m.get('loadavg_end', 0):.2f}",
                ],
            ],
        ),
    ]

    parts.append("## 1. List page overhead (`GET /conversations?size=50`)\n")
    for latency in settings["latencies"]:
        rows = []
        for name, label in (
            ("bare", "bare route"),
            ("cold", "dashboard, cold (TTL=0)"),
            ("warm", "dashboard, warm (TTL=60)"),
        ):
            p = f"page.{latency}.{name}"
            rows.append(
                [
                    label,
                    _cell(s, f"{p}.p50_ms", 2),
                    _cell(s, f"{p}.p99_ms", 2),
                    "1"
                    if name == "bare"
                    else _cell(s, f"page.{latency}.ratio_{name}_p50", 2),
                    "1"
                    if name == "bare"
                    else _cell(s, f"page.{latency}.ratio_{name}_p99", 2),
                ]
            )
        parts.append(
            f"Upstream latency {latency} ms, {settings['requests']} "
            "interleaved views per target per run:\n"
        )
        parts.append(_table(["", "p50", "p99", "p50 / bare", "p99 / bare"], rows))

    lc = results["long_conversation"]
    parts.append(
        f"## 2. Large conversation ({lc['messages']} messages, 200 per window)\n"
    )
    for latency in settings["latencies"]:
        p = f"large.{latency}"
        rows = [
            ["bare route (p50)", _cell(s, f"{p}.bare.p50_ms", 2), "1"],
            [
                "first view (render cache empty)",
                _cell(s, f"{p}.first_ms", 2),
                _cell(s, f"{p}.ratio_first_bare_p50", 2),
            ],
            [
                "repeat view (p50)",
                _cell(s, f"{p}.repeat.p50_ms", 2),
                _cell(s, f"{p}.ratio_repeat_bare_p50", 2),
            ],
            ["repeat view (p99)", _cell(s, f"{p}.repeat.p99_ms", 2), ""],
            [
                "page size (KiB)",
                _cell(
                    {k: {q: v / 1024 for q, v in d.items()} for k, d in s.items()},
                    f"{p}.page_bytes",
                    0,
                ),
                "",
            ],
        ]
        parts.append(f"Upstream latency {latency} ms, AIRISK_CACHE_TTL=0:\n")
        parts.append(_table(["", "ms", "/ bare p50"], rows))

    parts.append(
        f"## 3. Throughput ({settings['connections']} connections, "
        f"{settings['throughput_seconds']:g} s closed loop, list page)\n"
    )
    for latency in settings["throughput_latencies"]:
        rows = []
        for name in ("bare", "cold", "warm"):
            p = f"throughput.{latency}.{name}"
            if f"{p}.rps" not in s:
                continue
            errors = sum(
                max(0, run["throughput"][str(latency)][name]["non_200"])
                + run["throughput"][str(latency)][name]["socket_errors"]
                for run in results["runs"]
            )
            rows.append(
                [
                    name,
                    _cell(s, f"{p}.rps"),
                    _cell(s, f"{p}.p50_ms"),
                    _cell(s, f"{p}.p99_ms"),
                    _cell(s, f"{p}.cpu_ms_per_view", 2),
                    str(errors),
                ]
            )
        tool = results["runs"][0]["throughput"][str(latency)]["bare"]["tool"]
        parts.append(
            f"Upstream latency {latency} ms ({tool}); cold/bare requests/s: "
            f"{_cell(s, f'throughput.{latency}.ratio_cold_bare_rps', 2)}\n"
        )
        parts.append(
            _table(
                [
                    "",
                    "requests/s",
                    "p50",
                    "p99",
                    "server CPU ms/view",
                    "errors (all runs)",
                ],
                rows,
            )
        )

    t = results["round_trips"]
    parts.append("## 4. Round trips\n")
    rows = [
        ["list view, cold (agent list cached)", f"{t['list_calls_per_view']:g}"],
        ["list view, warm (within TTL)", f"{t['list_warm_calls_per_view']:g}"],
        ["conversation view", f"{t['conversation_calls_per_view']:g}"],
        ["long conversation view", f"{t['long_conversation_calls_per_view']:g}"],
    ]
    parts.append(_table(["upstream calls per view", ""], rows))
    rows = []
    for name in ("dashboard", "bare"):
        c = t[f"{name}_connections"]
        rows.append(
            [
                name,
                str(c["views"]),
                str(c["client_threads"]),
                str(c["connections_total"]),
                str(c["upstream_calls"]),
                str(c["non_200"]),
            ]
        )
    parts.append(
        _table(
            [
                "",
                "views",
                "client threads",
                "upstream TCP connections",
                "upstream calls",
                "non-200",
            ],
            rows,
        )
    )

    parts.append(f"## 5. Cache ({settings['cache_latency']} ms upstream)\n")
    rows = []
    for page in ("list", "conversation", "long_conversation"):
        p = f"cache.{page}"
        rows.append(
            [
                page,
                _cell(s, f"{p}.first.p50_ms", 2),
                _cell(s, f"{p}.repeat.p50_ms", 2),
                _cell(s, f"{p}.speedup_p50"),
            ]
        )
    parts.append(_table(["", "first (refresh=1) p50", "repeat p50", "x faster"], rows))

    p = f"large.{settings['latencies'][0]}.scan"
    parts.append(
        f"## 6. Whole-history search ({settings['latencies'][0]} ms upstream)\n"
    )
    rows = [
        ["conversations scanned", _cell(s, f"{p}.conversations", 0)],
        ["upstream pages (results=100)", _cell(s, f"{p}.pages", 0)],
        ["dashboard, JSON (s)", _cell(s, f"{p}.dashboard_json_s", 3)],
        ["dashboard, streamed HTML (s)", _cell(s, f"{p}.dashboard_html_s", 3)],
        ["sum of bare page fetches (s)", _cell(s, f"{p}.bare_sum_s", 3)],
        ["JSON / bare", _cell(s, f"{p}.ratio_json_bare", 2)],
        ["HTML / bare", _cell(s, f"{p}.ratio_html_bare", 2)],
    ]
    parts.append(_table(["", ""], rows))

    mib = {k: {q: v / 1024 for q, v in d.items()} for k, d in s.items()}
    p = f"large.{settings['latencies'][0]}"
    parts.append("## 7. Memory (worker peak RSS, VmHWM, MiB)\n")
    rows = [
        ["dashboard after sign-in and warm-up", _cell(mib, f"{p}.memory_baseline_kib")],
        ["... after the long conversation", _cell(mib, f"{p}.memory_after_long_kib")],
        ["... after the whole-history scan", _cell(mib, f"{p}.memory_after_scan_kib")],
        ["bare route worker, end of run", _cell(mib, "memory_bare_kib")],
    ]
    parts.append(_table(["", "MiB"], rows))

    parts.append("## Profile (py-spy --gil: the worker's GIL-holding samples)\n")
    for page, data in results["profile"].items():
        if not isinstance(data, dict) or "samples" not in data:
            parts.append(f"{page}: {data}\n")
            continue
        parts.append(
            f"### {page} ({data['samples']} samples; the GIL was held "
            f"{data.get('gil_busy_percent', 0):.0f}% of the time under load)\n"
        )
        parts.append(
            _table(
                ["self time by component", "%"],
                [[r["name"], f"{r['percent']:.1f}"] for r in data["self_by_component"]],
            )
        )
        parts.append(
            _table(
                ["inclusive time by function", "%"],
                [[f"`{r['name']}`", f"{r['percent']:.1f}"] for r in data["inclusive"]],
            )
        )

    parts.append("## Targets\n")
    parts.append(
        _table(
            ["measure", "target", "value", "met"],
            [
                [
                    r["name"],
                    r["target"],
                    str(r["value"]),
                    "yes" if r["met"] else "**no**",
                ]
                for r in results["targets"]
            ],
        )
    )
    return "\n".join(parts)
