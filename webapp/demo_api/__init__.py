"""A built-in demo of the AIRisk API: a second, separate Flask program.

It serves a deterministic fake tenant under ``/api`` for ``make run``, end-to-end
tests and benchmarks. It shares no code with the rest of ``webapp``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from . import oauth2
from .data import DEMO_TOKENS, Dataset, build_dataset
from .oauth2 import DEFAULT_CLIENT, DemoOAuthClient, OAuthStore
from .views import AspNetPaths, bp, http_error

__all__ = [
    "DEFAULT_CLIENT",
    "DEMO_TOKENS",
    "Dataset",
    "DemoOAuthClient",
    "build_dataset",
    "create_demo_app",
]


def create_demo_app(
    *,
    seed: int = 2024,
    latency_ms: int = 0,
    now: datetime | None = None,
    max_results: int | None = None,
    oauth_client: DemoOAuthClient = DEFAULT_CLIENT,
    token_ttl: int = oauth2.TOKEN_TTL,
    clock: Callable[[], float] = time.time,
) -> Flask:
    """Create the demo API app; same ``seed`` and ``now`` give identical data.

    ``max_results`` caps the rows of one GetConversations page below what a
    caller asks for, as AIRisk may (its documentation promises no page size).
    ``oauth_client`` is the one registered OAuth2 API client; minted tokens
    live ``token_ttl`` seconds by ``clock`` (tests pass a clock they move).

    :raises ValueError: if ``now`` is naive, ``latency_ms`` is negative,
        ``max_results`` is below 1 or ``token_ttl`` is not positive.
    """
    if latency_ms < 0:
        raise ValueError("latency_ms must not be negative")
    if max_results is not None and max_results < 1:
        raise ValueError("max_results must be at least 1")
    if token_ttl <= 0:
        raise ValueError("token_ttl must be positive")
    app = Flask(__name__)
    app.config["AIRISK_DEMO_MAX_RESULTS"] = max_results
    app.extensions["airisk_demo"] = build_dataset(seed, now or datetime.now(UTC))
    app.extensions["airisk_demo_cache"] = {}
    app.extensions["airisk_demo_oauth"] = OAuthStore(oauth_client, token_ttl, clock)
    app.register_blueprint(bp)
    app.register_blueprint(oauth2.bp)
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
