"""Run the demo AIRisk API for benchmarks, in its own process.

Like ``airisk-viewer demo-api``, plus what a benchmark needs to see from the
upstream side: a count of accepted TCP connections (in the worker's ``accept``)
and of requests per endpoint (a WSGI middleware), and an added latency that can
change between measurements.

It is served by gunicorn's threaded worker, not by werkzeug: werkzeug 3's
server answers every request with ``Connection: close``, so behind it every
upstream call would open a new connection whatever the client pools. A real
AIRisk keeps connections alive, and so does this. Control paths, outside
``/api``:

- ``GET /_bench/stats``: ``{"connections": n, "requests": {endpoint: n}}``
- ``GET /_bench/reset``: zero the counters
- ``GET /_bench/latency?ms=20``: sleep this long before every API answer

It prints ``{"port": <port>}`` once it listens (``--port 0``: a free port).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import ThreadWorker
from werkzeug.wrappers import Request, Response

from webapp.demo_api import create_demo_app

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


class Counters:
    """Connections accepted and requests served, safe across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.connections = 0
        self.requests: Counter[str] = Counter()

    def connection(self) -> None:
        """Count one accepted TCP connection."""
        with self._lock:
            self.connections += 1

    def request(self, path: str) -> None:
        """Count one API request under its endpoint (``/api/Chat/<name>``)."""
        endpoint = "/".join(path.split("/")[:4])
        with self._lock:
            self.requests[endpoint] += 1

    def snapshot(self) -> dict[str, Any]:
        """Return the counts as JSON-ready data."""
        with self._lock:
            return {"connections": self.connections, "requests": dict(self.requests)}

    def reset(self) -> None:
        """Zero every count."""
        with self._lock:
            self.connections = 0
            self.requests.clear()


class BenchMiddleware:
    """Count API requests, add latency, and answer the ``/_bench`` paths."""

    def __init__(self, app: WSGIApplication, counters: Counters, latency_ms: int):
        self.app = app
        self.counters = counters
        self.delay = latency_ms / 1000

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        """Serve one request."""
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_bench/"):
            return self._control(Request(environ))(environ, start_response)
        self.counters.request(path)
        if self.delay:
            # As create_demo_app(latency_ms=...) does, but changeable at run time.
            time.sleep(self.delay)
        return self.app(environ, start_response)

    def _control(self, request: Request) -> Response:
        if request.path == "/_bench/reset":
            self.counters.reset()
        elif request.path == "/_bench/latency":
            self.delay = max(0, request.args.get("ms", 0, type=int)) / 1000
        elif request.path != "/_bench/stats":
            return Response("not found", status=404)
        body = {**self.counters.snapshot(), "latencyMs": round(self.delay * 1000)}
        return Response(json.dumps(body), content_type="application/json")


#: The counts of this process; the worker inherits the object when forked.
COUNTERS = Counters()


class CountingWorker(ThreadWorker):
    """gunicorn's threaded worker, counting the connections it accepts."""

    def accept(self, *args: Any) -> None:
        """Accept one connection (if one is pending) and count it."""
        before = self.nr_conns
        super().accept(*args)
        if self.nr_conns > before:
            COUNTERS.connection()


class _Server(BaseApplication):
    """gunicorn, configured in code rather than from the command line."""

    def __init__(self, options: dict[str, Any], latency_ms: int, seed: int) -> None:
        self.options = options
        self.latency_ms = latency_ms
        self.seed = seed
        super().__init__()

    def load_config(self) -> None:
        """Apply the options."""
        for name, value in self.options.items():
            self.cfg.set(name, value)

    def load(self) -> WSGIApplication:
        """Build the demo API in the worker."""
        return BenchMiddleware(
            create_demo_app(seed=self.seed), COUNTERS, self.latency_ms
        )


def _announce_port(server: Any) -> None:
    port = server.LISTENERS[0].sock.getsockname()[1]
    print(json.dumps({"port": port}), flush=True)


def serve(host: str, port: int, latency_ms: int, seed: int) -> None:
    """Serve the counted demo API until terminated (SIGTERM or Ctrl-C)."""
    options = {
        "bind": f"{host}:{port}",
        "workers": 1,
        # The class itself: by name, `python -m` would import a second copy of
        # this module, with counters of its own.
        "worker_class": CountingWorker,
        # Enough for every dashboard thread and the bare route's at once.
        "threads": 64,
        # A real API keeps idle connections open for minutes (Kestrel: 130 s).
        "keepalive": 130,
        "graceful_timeout": 5,
        "loglevel": "warning",
        "when_ready": _announce_port,
    }
    _Server(options, latency_ms, seed).run()


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args(argv)
    serve(args.host, args.port, args.latency_ms, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
