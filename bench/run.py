"""Run the benchmark suite: the dashboard against the bare floor, side by side.

    python -m bench.run            # the full suite (about 11 minutes)
    python -m bench.run --quick    # seconds: proves the harness end to end

Every measurement alternates the dashboard and the bare route in one run on
one machine, so their ratio holds even when the shared machine is noisy; each
run starts fresh servers, and the report gives the median of the runs with
their min and max. Results: ``build/bench/results.json`` and ``results.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from statistics import median
from typing import Any
from urllib.parse import quote

import requests

from . import load, procs, profile, report
from .client import Client, View, interleaved, latency_summary

ALICE = "demo-alice"
LARGE = "demo-large"
THREADS = 8
LIST_PATH = "/conversations?size=50"
BARE_LIST_PATH = "/bare/conversations?results=50&skip=0"
SCAN_PAGE = 100  # rows per GetConversations call of a whole-history scan
SCAN_QUERY = quote("#1234")


@dataclass(frozen=True)
class Settings:
    """How long and how often each measurement runs."""

    runs: int = 3
    requests: int = 200
    large_requests: int = 30
    latencies: tuple[int, ...] = (20, 0)
    throughput_latencies: tuple[int, ...] = (20, 0)
    throughput_seconds: float = 30.0
    connections: int = 32
    use_wrk: bool = True
    cache_latency: int = 150
    cache_pairs: int = 15
    round_trip_views: int = 1000
    calls_views: int = 50
    scan_max: int = 100_000
    profile_seconds: float = 15.0

    @classmethod
    def quick(cls) -> Settings:
        """Return tiny settings that exercise every step in seconds."""
        return cls(
            runs=1,
            requests=20,
            large_requests=5,
            latencies=(20, 0),
            throughput_latencies=(20,),
            throughput_seconds=2.0,
            use_wrk=False,
            cache_pairs=3,
            round_trip_views=100,
            calls_views=5,
            scan_max=1000,
            profile_seconds=0.0,
        )


# -- helpers ------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """Describe the machine: cores, CPU model, Python, tools and load."""
    model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    wrk = shutil.which("wrk")
    wrk_version = ""
    if wrk:
        done = subprocess.run([wrk, "-v"], capture_output=True, text=True)
        wrk_version = (done.stdout + done.stderr).split("[", 1)[0].strip()
    import gunicorn

    return {
        "code": _code_version(),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "gunicorn": gunicorn.__version__,
        "wrk": wrk_version or "not installed",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "loadavg_start": os.getloadavg()[0],
    }


def _code_version() -> str:
    """Return the commit measured, noting uncommitted changes (read-only git)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=procs.ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=procs.ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" with uncommitted changes" if dirty else "")


def _getter(server: procs.Gunicorn, headers: dict[str, str]) -> Callable[[str], View]:
    client = Client(server.url, headers)
    return client.get


def _warm(get: Callable[[str], View], path: str, times: int = 3) -> None:
    for _ in range(times):
        view = get(path)
        if view.status != 200:
            raise RuntimeError(f"warm-up of {path} answered {view.status}")


def _with_errors(times: list[float], errors: int) -> dict[str, float]:
    return {**latency_summary(times), "errors": errors}


def _find_conversations(upstream: procs.Upstream) -> tuple[str, str, int]:
    """Return the long conversation's id, an ordinary one's id, its message count."""
    headers = {"Authorization": f"Bearer {ALICE}"}
    rows = requests.get(
        f"{upstream.url}/api/Chat/GetConversations",
        params={"results": 1000},
        headers=headers,
        timeout=30,
    ).json()
    long_id = next(r["id"] for r in rows if "very long thread" in r["title"])
    short_id = next(r["id"] for r in rows if r["id"] != long_id)
    body = requests.get(
        f"{upstream.url}/api/Chat/GetConversation/{long_id}",
        headers=headers,
        timeout=30,
    ).json()
    return long_id, short_id, len(body["messages"])


# -- the measurements ----------------------------------------------------------------


class Suite:
    """Every measurement of one benchmark run, sharing the upstream process."""

    def __init__(self, settings: Settings, workdir: str) -> None:
        self.settings = settings
        self.workdir = workdir
        self.upstream = procs.Upstream(settings.latencies[0])
        self.long_id, self.short_id, self.long_messages = _find_conversations(
            self.upstream
        )
        self.bare_alice = {"Authorization": f"Bearer {ALICE}"}
        self.bare_large = {"Authorization": f"Bearer {LARGE}"}

    def close(self) -> None:
        """Stop the upstream process."""
        self.upstream.stop()

    def dashboard(self, ttl: int) -> tuple[procs.Gunicorn, dict[str, str]]:
        """Start a dashboard with ``AIRISK_CACHE_TTL=ttl``; return it and a cookie."""
        server = procs.dashboard(
            self.upstream,
            self.workdir,
            AIRISK_CACHE_TTL=ttl,
            AIRISK_SCAN_MAX=self.settings.scan_max,
        )
        return server, {"Cookie": procs.sign_in(server.url, ALICE)}

    def one_run(self) -> dict[str, Any]:
        """Measure everything that has a median: fresh servers, every latency."""
        s = self.settings
        bare = procs.bare(self.upstream)
        cold, cold_cookie = self.dashboard(ttl=0)
        warm, warm_cookie = self.dashboard(ttl=60)
        result: dict[str, Any] = {}
        try:
            get_bare = _getter(bare, self.bare_alice)
            get_cold = _getter(cold, cold_cookie)
            get_warm = _getter(warm, warm_cookie)
            result["page"] = {}
            for latency in s.latencies:
                self.upstream.set_latency(latency)
                result["page"][str(latency)] = self.page_overhead(
                    get_bare, get_cold, get_warm
                )
            result["large"] = {}
            for latency in s.latencies:
                self.upstream.set_latency(latency)
                result["large"][str(latency)] = self.large_conversation(
                    get_bare, scan=latency == s.latencies[0], bare=bare
                )
            result["cache"] = self.cache(get_warm)
            result["throughput"] = self.throughput(
                {
                    "bare": (bare, self.bare_alice, BARE_LIST_PATH),
                    "cold": (cold, cold_cookie, LIST_PATH),
                    "warm": (warm, warm_cookie, LIST_PATH),
                }
            )
            result["memory_bare_kib"] = bare.peak_rss_kib()
        finally:
            for server in (bare, cold, warm):
                server.stop()
        return result

    def page_overhead(
        self,
        get_bare: Callable[[str], View],
        get_cold: Callable[[str], View],
        get_warm: Callable[[str], View],
    ) -> dict[str, Any]:
        """Time the list page (cold and warm cache) against the bare route."""
        _warm(get_bare, BARE_LIST_PATH)
        _warm(get_cold, LIST_PATH)
        _warm(get_warm, LIST_PATH)
        times, errors = interleaved(
            {
                "bare": lambda: get_bare(BARE_LIST_PATH),
                "cold": lambda: get_cold(LIST_PATH),
                "warm": lambda: get_warm(LIST_PATH),
            },
            self.settings.requests,
        )
        out: dict[str, Any] = {k: _with_errors(v, errors[k]) for k, v in times.items()}
        for name in ("cold", "warm"):
            for q in ("p50", "p99"):
                key = f"{q}_ms"
                out[f"ratio_{name}_{q}"] = out[name][key] / out["bare"][key]
            out[f"overhead_{name}_p50_ms"] = out[name]["p50_ms"] - out["bare"]["p50_ms"]
        return out

    def large_conversation(
        self, get_bare: Callable[[str], View], *, scan: bool, bare: procs.Gunicorn
    ) -> dict[str, Any]:
        """Time the long conversation's first and repeat views against the bare route.

        A fresh dashboard (``AIRISK_CACHE_TTL=0``) has an empty rendering cache,
        so its first view of the conversation renders every message; the
        repeats fetch and parse again but reuse the rendered Markdown. With
        ``scan`` the same worker then scans the large user's whole history,
        and its peak memory is read after each step.
        """
        server, cookie = self.dashboard(ttl=0)
        try:
            get = _getter(server, cookie)
            path = f"/conversations/{self.long_id}"
            bare_path = f"/bare/conversations/{self.long_id}"
            # Compile the templates first: the first view is about the data.
            _warm(get, LIST_PATH, 1)
            _warm(get, f"/conversations/{self.short_id}", 1)
            _warm(get_bare, bare_path)
            out: dict[str, Any] = {"memory_baseline_kib": server.peak_rss_kib()}
            first = get(path)
            if first.status != 200:
                raise RuntimeError(f"long conversation answered {first.status}")
            out["first_ms"] = first.seconds * 1000
            out["page_bytes"] = first.size
            times, errors = interleaved(
                {"repeat": lambda: get(path), "bare": lambda: get_bare(bare_path)},
                self.settings.large_requests,
            )
            out.update({k: _with_errors(v, errors[k]) for k, v in times.items()})
            out["ratio_first_bare_p50"] = out["first_ms"] / out["bare"]["p50_ms"]
            out["ratio_repeat_bare_p50"] = (
                out["repeat"]["p50_ms"] / out["bare"]["p50_ms"]
            )
            out["memory_after_long_kib"] = server.peak_rss_kib()
            if scan:
                out["scan"] = self.scan(server, bare)
                out["memory_after_scan_kib"] = server.peak_rss_kib()
            return out
        finally:
            server.stop()

    def scan(self, server: procs.Gunicorn, bare: procs.Gunicorn) -> dict[str, Any]:
        """Time a whole-history search against the sum of the bare page fetches."""
        cookie = {"Cookie": procs.sign_in(server.url, LARGE)}
        get = _getter(server, cookie)
        get_bare = _getter(bare, self.bare_large)
        started = time.perf_counter()
        answer = get(f"/conversations?q={SCAN_QUERY}&format=json&refresh=1")
        json_s = time.perf_counter() - started
        if answer.status != 200:
            raise RuntimeError(f"scan answered {answer.status}")
        found = requests.get(
            f"{server.url}/conversations?q={SCAN_QUERY}&format=json",
            headers=cookie,
            timeout=60,
        ).json()
        scanned, complete = found["scanned"], found["complete"]
        pages = scanned // SCAN_PAGE + 1 if complete else -(-scanned // SCAN_PAGE)
        bare_s = 0.0
        for number in range(pages):
            view = get_bare(
                f"/bare/conversations?results={SCAN_PAGE}&skip={number * SCAN_PAGE}"
            )
            if view.status != 200:
                raise RuntimeError(f"bare page answered {view.status}")
            bare_s += view.seconds
        html = get(f"/conversations?q={SCAN_QUERY}&refresh=1")
        return {
            "conversations": scanned,
            "complete": complete,
            "pages": pages,
            "dashboard_json_s": json_s,
            "dashboard_html_s": html.seconds,
            "bare_sum_s": bare_s,
            "ratio_json_bare": json_s / bare_s,
            "ratio_html_bare": html.seconds / bare_s,
        }

    def cache(self, get_warm: Callable[[str], View]) -> dict[str, Any]:
        """Time first views (``refresh=1``) against repeats within the TTL."""
        self.upstream.set_latency(self.settings.cache_latency)
        out: dict[str, Any] = {}
        pages = {
            "list": LIST_PATH,
            "conversation": f"/conversations/{self.short_id}",
            "long_conversation": f"/conversations/{self.long_id}",
        }
        for name, path in pages.items():
            fresh = path + ("&" if "?" in path else "?") + "refresh=1"
            _warm(get_warm, path, 1)
            firsts: list[float] = []
            repeats: list[float] = []
            errors = 0
            for _ in range(self.settings.cache_pairs):
                first, repeat = get_warm(fresh), get_warm(path)
                errors += (first.status != 200) + (repeat.status != 200)
                firsts.append(first.seconds)
                repeats.append(repeat.seconds)
            out[name] = {
                "first": latency_summary(firsts),
                "repeat": latency_summary(repeats),
                "errors": errors,
            }
            out[name]["speedup_p50"] = (
                out[name]["first"]["p50_ms"] / out[name]["repeat"]["p50_ms"]
            )
        return out

    def throughput(
        self, targets: dict[str, tuple[procs.Gunicorn, dict[str, str], str]]
    ) -> dict[str, Any]:
        """Run closed-loop load on each target, at each throughput latency."""
        s = self.settings
        out: dict[str, Any] = {}
        for latency in s.throughput_latencies:
            self.upstream.set_latency(latency)
            row: dict[str, Any] = {}
            for name, (server, headers, path) in targets.items():
                if name == "warm" and latency != s.throughput_latencies[0]:
                    continue  # a warm cache never waits for AIRisk
                cpu = server.cpu_seconds()
                result = load.closed_loop(
                    server.url + path,
                    headers,
                    s.connections,
                    s.throughput_seconds,
                    use_wrk=s.use_wrk,
                )
                row[name] = result.as_dict()
                # The worker's CPU per view: what limits it under load.
                row[name]["cpu_ms_per_view"] = (
                    (server.cpu_seconds() - cpu) * 1000 / max(result.requests, 1)
                )
            row["ratio_cold_bare_rps"] = row["cold"]["rps"] / row["bare"]["rps"]
            out[str(latency)] = row
        return out

    def round_trips(self) -> dict[str, Any]:
        """Count upstream calls per view and connections for many views."""
        s = self.settings
        up = self.upstream
        up.set_latency(s.latencies[0])
        out: dict[str, Any] = {}
        cold, cookie = self.dashboard(ttl=0)
        warm, warm_cookie = self.dashboard(ttl=60)
        try:
            get = _getter(cold, cookie)
            get_warm = _getter(warm, warm_cookie)
            views = s.calls_views
            for name, path in {
                "list": LIST_PATH,
                "conversation": f"/conversations/{self.short_id}",
                "long_conversation": f"/conversations/{self.long_id}",
            }.items():
                _warm(get, path, 1)  # the agent list is cached from here on
                up.control("reset")
                for _ in range(views):
                    get(path)
                calls = up.control("stats")["requests"]
                out[f"{name}_calls_per_view"] = sum(calls.values()) / views
                out[f"{name}_calls"] = calls
            _warm(get_warm, LIST_PATH, 1)
            up.control("reset")
            for _ in range(views):
                get_warm(LIST_PATH)
            calls = up.control("stats")["requests"]
            out["list_warm_calls_per_view"] = sum(calls.values()) / views
        finally:
            cold.stop()
            warm.stop()
        for name in ("dashboard", "bare"):
            up.control("reset")
            if name == "dashboard":
                server, headers = self.dashboard(ttl=0)
                path = LIST_PATH
            else:
                server, headers = procs.bare(up), self.bare_alice
                path = BARE_LIST_PATH
            try:
                opened_by_sign_in = up.control("stats")["connections"]
                statuses = _concurrent_views(
                    server.url, headers, path, s.round_trip_views, THREADS
                )
                stats = up.control("stats")
            finally:
                server.stop()
            out[f"{name}_connections"] = {
                "views": s.round_trip_views,
                "client_threads": THREADS,
                "worker_threads": THREADS,
                "connections_total": stats["connections"],
                "connections_at_sign_in": opened_by_sign_in,
                "upstream_calls": sum(stats["requests"].values()),
                "calls": stats["requests"],
                "non_200": sum(n for code, n in statuses.items() if code != 200),
            }
        return out

    def profile(self) -> dict[str, Any]:
        """Sample the worker with py-spy under load on the list and long pages."""
        s = self.settings
        if s.profile_seconds <= 0:
            return {"skipped": "profile_seconds is 0"}
        if profile.py_spy() is None:
            return {"skipped": "py-spy is not installed (make bench installs it)"}
        self.upstream.set_latency(s.latencies[0])
        out: dict[str, Any] = {}
        server, cookie = self.dashboard(ttl=0)
        try:
            for name, path in {
                "list": LIST_PATH,
                "long_conversation": f"/conversations/{self.long_id}",
            }.items():
                _warm(_getter(server, cookie), path, 2)
                with ThreadPoolExecutor(max_workers=1) as pool:
                    loaded = pool.submit(
                        load.closed_loop,
                        server.url + path,
                        cookie,
                        THREADS,
                        s.profile_seconds + 2,
                        use_wrk=s.use_wrk,
                    )
                    try:
                        collapsed = profile.record(server.worker_pid, s.profile_seconds)
                        out[name] = profile.summarise(collapsed, top=25)
                        possible = profile.RATE * round(s.profile_seconds)
                        out[name]["gil_busy_percent"] = (
                            100 * out[name]["samples"] / possible
                        )
                    except RuntimeError as exc:
                        out[name] = {"skipped": str(exc)}
                    out[name]["load"] = loaded.result().as_dict()
        finally:
            server.stop()
        return out


def _concurrent_views(
    base_url: str, headers: dict[str, str], path: str, views: int, threads: int
) -> dict[int, int]:
    """Make ``views`` GETs from ``threads`` keep-alive clients; count statuses."""
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    share = [views // threads + (i < views % threads) for i in range(threads)]

    def worker(count: int) -> None:
        client = Client(base_url, headers)
        for _ in range(count):
            status = client.get(path).status
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
        client.close()

    pool = [threading.Thread(target=worker, args=(n,)) for n in share]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return statuses


# -- aggregation ---------------------------------------------------------------------


def flatten(data: Any, prefix: str = "") -> dict[str, float]:
    """Return the numeric leaves of nested dicts as ``a.b.c`` keys."""
    out: dict[str, float] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
    elif isinstance(data, int | float) and not isinstance(data, bool):
        out[prefix.rstrip(".")] = float(data)
    return out


def aggregate(runs: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Return median, min and max across runs of every numeric result."""
    flat = [flatten(run) for run in runs]
    keys = sorted(set().union(*flat)) if flat else []
    out = {}
    for key in keys:
        values = [f[key] for f in flat if key in f]
        out[key] = {"median": median(values), "min": min(values), "max": max(values)}
    return out


def run_suite(settings: Settings, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every measurement and return the results structure."""
    started = time.monotonic()
    info = machine()
    with tempfile.TemporaryDirectory(prefix="bench-") as workdir:
        suite = Suite(settings, workdir)
        try:
            runs = []
            for number in range(1, settings.runs + 1):
                log(f"run {number}/{settings.runs}")
                runs.append(suite.one_run())
            log("round trips and connections")
            round_trips = suite.round_trips()
            log("profile")
            profiled = suite.profile()
        finally:
            suite.close()
    info["loadavg_end"] = os.getloadavg()[0]
    results: dict[str, Any] = {
        "machine": info,
        "settings": asdict(settings),
        "long_conversation": {"id": suite.long_id, "messages": suite.long_messages},
        "runs": runs,
        "summary": aggregate(runs),
        "round_trips": round_trips,
        "profile": profiled,
        "seconds": time.monotonic() - started,
    }
    results["targets"] = report.targets(results)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, run the suite, write JSON and Markdown results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny durations")
    parser.add_argument("--runs", type=int)
    parser.add_argument("--requests", type=int, help="timed views per target")
    parser.add_argument("--throughput-seconds", type=float)
    parser.add_argument("--connections", type=int)
    parser.add_argument("--profile-seconds", type=float)
    parser.add_argument("--scan-max", type=int, help="AIRISK_SCAN_MAX")
    parser.add_argument("--no-wrk", action="store_true", help="Python load only")
    parser.add_argument("--out", default="build/bench", help="results folder")
    args = parser.parse_args(argv)
    settings = Settings.quick() if args.quick else Settings()
    overrides = {
        "runs": args.runs,
        "requests": args.requests,
        "throughput_seconds": args.throughput_seconds,
        "connections": args.connections,
        "profile_seconds": args.profile_seconds,
        "scan_max": args.scan_max,
    }
    settings = replace(settings, **{k: v for k, v in overrides.items() if v})
    if args.no_wrk:
        settings = replace(settings, use_wrk=False)
    results = run_suite(settings)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(report.markdown(results))
    print(f"wrote {out / 'results.json'} and {out / 'results.md'}")
    for target in results["targets"]:
        mark = "met" if target["met"] else "NOT met"
        print(f"  {target['name']}: {target['value']} ({target['target']}: {mark})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
