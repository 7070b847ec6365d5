"""A built-in demo of the AIRisk API: a second, separate Flask program.

It serves a deterministic fake tenant under ``/api`` for ``make run``, end-to-end
tests and benchmarks. It shares no code with the rest of ``webapp``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from .data import DEMO_TOKENS, Dataset, build_dataset
from .views import AspNetPaths, bp, http_error

__all__ = ["DEMO_TOKENS", "Dataset", "build_dataset", "create_demo_app"]


def create_demo_app(
    *,
    seed: int = 2024,
    latency_ms: int = 0,
    now: datetime | None = None,
    max_results: int | None = None,
) -> Flask:
    """Create the demo API app; same ``seed`` and ``now`` give identical data.

    ``max_results`` caps the rows of one GetConversations page below what a
    caller asks for, as AIRisk may (its documentation promises no page size).

    :raises ValueError: if ``now`` is naive, ``latency_ms`` is negative or
        ``max_results`` is below 1.
    """
    if latency_ms < 0:
        raise ValueError("latency_ms must not be negative")
    if max_results is not None and max_results < 1:
        raise ValueError("max_results must be at least 1")
    app = Flask(__name__)
    app.config["AIRISK_DEMO_MAX_RESULTS"] = max_results
    app.extensions["airisk_demo"] = build_dataset(seed, now or datetime.now(UTC))
    app.extensions["airisk_demo_cache"] = {}
    app.register_blueprint(bp)
    app.register_error_handler(HTTPException, http_error)
    app.wsgi_app = AspNetPaths(app)  # type: ignore[method-assign]

    if latency_ms:
        delay = latency_ms / 1000

        # before_request also runs for routing errors, so every answer waits.
        @app.before_request
        def _simulate_latency() -> Response | None:
            time.sleep(delay)
            return None

    return app
