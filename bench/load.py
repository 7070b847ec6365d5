"""Closed-loop load: ``wrk`` when installed, else a bounded Python generator."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

from .client import Client, percentile

# wrk calls response() only when a script defines it; done() adds up the threads.
_WRK_SCRIPT = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) non200 = 0 end
function response(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 end
end
function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("non200") end
  io.write(string.format("BENCH non200=%d\\n", total))
end
"""


@dataclass(frozen=True)
class LoadResult:
    """What one closed-loop run achieved, and every way it went wrong."""

    tool: str
    connections: int
    seconds: float
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    non_200: int
    socket_errors: int

    def as_dict(self) -> dict[str, Any]:
        """Return the result as JSON-ready data."""
        return asdict(self)


def have_wrk() -> bool:
    """Tell whether ``wrk`` is on the PATH."""
    return shutil.which("wrk") is not None


def _wrk_ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(
    url: str, headers: dict[str, str], connections: int, seconds: float
) -> LoadResult:
    """Run wrk against ``url`` and parse its report into a :class:`LoadResult`."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(_WRK_SCRIPT)
        script.flush()
        command = ["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s"]
        command += ["--latency", "-s", script.name]
        for name, value in headers.items():
            command += ["-H", f"{name}: {value}"]
        done = subprocess.run(
            [*command, url], capture_output=True, text=True, check=True, timeout=600
        )
    out = done.stdout
    total = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    assert total, out
    duration = float(total.group(2)) * {"ms": 0.001, "s": 1.0, "m": 60.0}.get(
        total.group(3), 1.0
    )
    lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.MULTILINE))
    p50 = re.fullmatch(r"([\d.]+)(\w+)", lat["50"])
    p99 = re.fullmatch(r"([\d.]+)(\w+)", lat["99"])
    assert p50 and p99, out
    socket = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    non200 = re.search(r"BENCH non200=(\d+)", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert rps, out
    return LoadResult(
        tool="wrk",
        connections=connections,
        seconds=duration,
        requests=int(total.group(1)),
        rps=float(rps.group(1)),
        p50_ms=_wrk_ms(*p50.groups()),
        p99_ms=_wrk_ms(*p99.groups()),
        non_200=int(non200.group(1)) if non200 else -1,
        socket_errors=sum(int(n) for n in socket.groups()) if socket else 0,
    )


def run_python(
    url: str, headers: dict[str, str], connections: int, seconds: float
) -> LoadResult:
    """Keep ``connections`` threads each sending one request after another.

    Each thread stops at the deadline, so the run ends by itself. The client
    shares the GIL and the two cores with the servers: wrk measures higher.
    """
    parts = urlsplit(url)
    base_url = f"{parts.scheme}://{parts.netloc}"
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    times: list[float] = []
    counts = {"requests": 0, "non_200": 0, "errors": 0}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker() -> None:
        client = Client(base_url, headers)
        mine: list[float] = []
        non_200 = errors = 0
        while time.monotonic() < deadline:
            try:
                view = client.get(path)
            except OSError:
                errors += 1
                client.close()
                continue
            mine.append(view.seconds)
            non_200 += view.status != 200
        client.close()
        with lock:
            times.extend(mine)
            counts["requests"] += len(mine)
            counts["non_200"] += non_200
            counts["errors"] += errors

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    return LoadResult(
        tool="python",
        connections=connections,
        seconds=elapsed,
        requests=counts["requests"],
        rps=counts["requests"] / elapsed,
        p50_ms=percentile(times, 50) * 1000 if times else 0.0,
        p99_ms=percentile(times, 99) * 1000 if times else 0.0,
        non_200=counts["non_200"],
        socket_errors=counts["errors"],
    )


def closed_loop(
    url: str,
    headers: dict[str, str],
    connections: int,
    seconds: float,
    *,
    use_wrk: bool,
) -> LoadResult:
    """Run closed-loop load with wrk (if asked and installed) or Python."""
    if use_wrk and have_wrk():
        return run_wrk(url, headers, connections, seconds)
    return run_python(url, headers, connections, seconds)
