"""The benchmark harness runs end to end (``bench.run --quick``).

Structure only: timings on a shared machine prove nothing in a unit suite, so
no assertion here looks at a duration (house style: benchmarks are benchmarks).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import profile, throughput

# Real servers and processes: left out of the fast tier (-m 'not slow').
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench")
    subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--out", str(out)],
        cwd=ROOT,
        check=True,
        timeout=180,
        capture_output=True,
    )
    results: dict[str, Any] = json.loads((out / "results.json").read_text())
    results["_markdown"] = (out / "results.md").read_text()
    return results


def test_quick_run_describes_the_machine(quick_results: dict[str, Any]) -> None:
    machine = quick_results["machine"]
    assert {"nproc", "cpu", "python", "date"} <= set(machine)
    assert machine["nproc"] >= 1


def test_quick_run_measures_every_section(quick_results: dict[str, Any]) -> None:
    (run,) = quick_results["runs"]
    assert set(run) >= {"page", "large", "cache", "throughput", "memory_bare_kib"}
    for latency in ("20", "0"):
        assert {"bare", "cold", "warm"} <= set(run["page"][latency])
        assert {"p50_ms", "p99_ms"} <= set(run["page"][latency]["cold"])
        assert {"first_ms", "repeat", "bare"} <= set(run["large"][latency])
    scan = run["large"]["20"]["scan"]
    assert scan["conversations"] == 1000 and scan["pages"] == 10
    assert {"dashboard_json_s", "bare_sum_s"} <= set(scan)
    assert set(run["large"]["20"]) >= {"memory_after_long_kib", "memory_after_scan_kib"}
    throughput = run["throughput"]["20"]
    assert throughput["cold"]["tool"] == "python"
    assert throughput["cold"]["requests"] > 0
    # The dashboard worker spent CPU on every view, and that is recorded.
    assert throughput["cold"]["cpu_ms_per_view"] > 0


def test_quick_run_counts_round_trips(quick_results: dict[str, Any]) -> None:
    trips = quick_results["round_trips"]
    assert trips["list_calls_per_view"] == 1
    assert trips["conversation_calls_per_view"] == 1
    assert trips["dashboard_connections"]["non_200"] == 0
    assert trips["dashboard_connections"]["connections_total"] >= 1


def test_quick_run_summarises_and_reports(quick_results: dict[str, Any]) -> None:
    summary = quick_results["summary"]
    assert summary["page.20.cold.p50_ms"].keys() == {"median", "min", "max"}
    for target in quick_results["targets"]:
        assert {"name", "target", "value", "met"} <= set(target)
    assert "profile" in quick_results
    markdown = quick_results["_markdown"]
    for heading in ("## 1.", "## 4. Round trips", "## 7. Memory", "## Targets"):
        assert heading in markdown


def test_profile_summary_of_collapsed_stacks() -> None:
    stacks = (
        "run (gunicorn/workers/gthread.py:1);"
        "index (/work/main/webapp/conversations.py:90);"
        "render_template (/x/site-packages/flask/templating.py:140) 3\n"
        "run (gunicorn/workers/gthread.py:1);"
        "loads (/usr/lib/python3.11/json/__init__.py:299) 1\n"
    )
    summary = profile.summarise(stacks)
    assert summary["samples"] == 4
    components = {row["name"]: row["percent"] for row in summary["self_by_component"]}
    assert components == {"flask": 75.0, "json": 25.0}
    names = [row["name"] for row in summary["inclusive"]]
    assert "webapp/conversations.py:index" in names
    assert not any(name.startswith("gunicorn") for name in names)


def test_throughput_script_compares_cold_with_bare() -> None:

    results = throughput.measure(
        rounds=1,
        seconds=1,
        latency_ms=0,
        workers=1,
        use_wrk=False,
        settings={"LIST_ROW_CACHE": "0"},  # as the first-view figure is measured
    )
    for name in ("bare", "cold"):
        (only,) = results[name]
        assert only["rps"] > 0 and only["errors"] == 0
        assert only["cpu_ms_per_view"] > 0
