"""Cold list-page throughput against the bare route, with CPU per view.

The quick measurement behind each optimisation commit in
``docs/benchmarks.md``: one upstream, the bare route and a dashboard with
``AIRISK_CACHE_TTL=0`` (every view goes upstream), closed-loop load on each
in turn (bare, cold, bare, cold, ...), and the CPU time each server process
spent per view (user + system, master and workers, from ``/proc``)::

    .venv/bin/python -m bench.throughput --rounds 2 --seconds 10
    .venv/bin/python -m bench.throughput --path "/conversations?size=50&format=json"
    .venv/bin/python -m bench.throughput --setting LIST_ROW_CACHE=0

The second measures a floor: the same page's JSON twin (same session,
upstream call and parsing, no HTML); the third a list whose rows are
rendered on every view, as on a first view.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections.abc import Sequence

from . import load, procs
from .run import ALICE, BARE_LIST_PATH, LIST_PATH


def measure(
    rounds: int,
    seconds: float,
    latency_ms: int,
    workers: int,
    use_wrk: bool,
    path: str = LIST_PATH,
    settings: dict[str, str] | None = None,
) -> dict[str, list[dict[str, float]]]:
    """Return, per target, one record per round: rps, p50, CPU per view.

    ``path`` is the dashboard page under load (the 50-row list by default);
    ``settings`` are extra dashboard settings (``LIST_ROW_CACHE=0``, ...).
    """
    upstream = procs.Upstream(latency_ms)
    servers: dict[str, procs.Gunicorn] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-throughput-") as workdir:
            servers["bare"] = procs.bare(upstream, workers=workers)
            servers["cold"] = procs.dashboard(
                upstream,
                workdir,
                workers=workers,
                **{"AIRISK_CACHE_TTL": "0", **(settings or {})},
            )
            targets = {
                "bare": (BARE_LIST_PATH, {"Authorization": f"Bearer {ALICE}"}),
                "cold": (
                    path,
                    {"Cookie": procs.sign_in(servers["cold"].url, ALICE)},
                ),
            }
            results: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
            for _ in range(rounds):
                for name, (page, headers) in targets.items():
                    url = servers[name].url + page
                    load.closed_loop(url, headers, 32, 2, use_wrk=use_wrk)  # warm-up
                    app_cpu, api_cpu = (
                        servers[name].cpu_seconds(),
                        upstream.cpu_seconds(),
                    )
                    done = load.closed_loop(url, headers, 32, seconds, use_wrk=use_wrk)
                    views = max(done.requests, 1)
                    results[name].append(
                        {
                            "rps": done.rps,
                            "p50_ms": done.p50_ms,
                            "errors": done.non_200 + done.socket_errors,
                            "cpu_ms_per_view": (servers[name].cpu_seconds() - app_cpu)
                            * 1000
                            / views,
                            "upstream_cpu_ms_per_view": (
                                upstream.cpu_seconds() - api_cpu
                            )
                            * 1000
                            / views,
                        }
                    )
    finally:
        for server in servers.values():
            server.stop()
        upstream.stop()
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.throughput")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--no-wrk", action="store_true", help="Python load only")
    parser.add_argument(
        "--path", default=LIST_PATH, help=f"dashboard page (default {LIST_PATH})"
    )
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a dashboard setting, e.g. LIST_ROW_CACHE=0 (repeatable)",
    )
    args = parser.parse_args(argv)
    results = measure(
        args.rounds,
        args.seconds,
        args.latency_ms,
        args.workers,
        not args.no_wrk,
        args.path,
        dict(item.split("=", 1) for item in args.setting),
    )
    for name, rounds in results.items():
        cells = "  ".join(
            f"{r['rps']:.0f} req/s, p50 {r['p50_ms']:.0f} ms, "
            f"{r['cpu_ms_per_view']:.2f} ms CPU/view "
            f"(upstream {r['upstream_cpu_ms_per_view']:.2f}), errors {r['errors']:.0f}"
            for r in rounds
        )
        print(f"{name}: {cells}")
    ratios = [
        cold["rps"] / bare["rps"]
        for bare, cold in zip(results["bare"], results["cold"], strict=True)
    ]
    print(
        f"cold/bare req/s: median {statistics.median(ratios):.2f} "
        f"({min(ratios):.2f}-{max(ratios):.2f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
