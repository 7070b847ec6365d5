"""Time page views from one keep-alive connection, as a browser makes them."""

from __future__ import annotations

import http.client
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class View:
    """One timed GET: status, seconds to the last byte, body size (and body)."""

    status: int
    seconds: float
    size: int
    body: bytes = b""


class Client:
    """A keep-alive HTTP/1.1 connection that times each GET to its last byte."""

    def __init__(self, base_url: str, headers: dict[str, str] | None = None) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.headers = dict(headers or {})
        self._conn: http.client.HTTPConnection | None = None

    def get(self, path: str, *, keep_body: bool = False) -> View:
        """GET ``path``; a keep-alive connection the server closed is reopened.

        The timer restarts with the new connection, so a server's idle
        timeout never counts as page time.
        """
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, 60)
            started = time.perf_counter()
            try:
                self._conn.request("GET", path, headers=self.headers)
                response = self._conn.getresponse()
                body = response.read()
            except (http.client.RemoteDisconnected, ConnectionError):
                self.close()
                if attempt == 2:
                    raise
                continue
            elapsed = time.perf_counter() - started
            if response.will_close:
                self.close()
            return View(response.status, elapsed, len(body), body if keep_body else b"")
        raise AssertionError("unreachable")

    def fetch(self, path: str) -> bytes:
        """GET ``path`` and return the body.

        :raises RuntimeError: if the answer is not 200.
        """
        view = self.get(path, keep_body=True)
        if view.status != 200:
            raise RuntimeError(f"GET {path} answered {view.status}")
        return view.body

    def close(self) -> None:
        """Close the connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def percentile(samples: Sequence[float], q: float) -> float:
    """Return the ``q``-th percentile (0-100), interpolated between ranks."""
    ordered = sorted(samples)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """Return p50, p99 and mean of timings, in milliseconds."""
    return {
        "p50_ms": percentile(seconds, 50) * 1000,
        "p99_ms": percentile(seconds, 99) * 1000,
        "mean_ms": statistics.fmean(seconds) * 1000,
        "n": len(seconds),
    }


def interleaved(
    targets: dict[str, Callable[[], View]], rounds: int
) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Time each target once per round, rotating the order every round.

    Alternating the targets spreads the machine's noise over all of them, so
    their ratio is fair even when the absolute numbers wander.

    :returns: seconds per target, and the count of non-200 answers per target.
    """
    names = list(targets)
    times: dict[str, list[float]] = {name: [] for name in names}
    errors = dict.fromkeys(names, 0)
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            view = targets[name]()
            if view.status != 200:
                errors[name] += 1
            times[name].append(view.seconds)
    return times, errors
