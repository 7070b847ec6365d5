"""The floor to compare the dashboard with: a bare Flask route per upstream call.

Each route makes exactly the call the dashboard makes (requests, one pooled
``Session`` per thread, the same URL, query and bearer header) and returns the
upstream JSON as it came: no session, no parsing, no template. Serve it as the
dashboard is served::

    AIRISK_BASE_URL=http://127.0.0.1:5001 gunicorn -k gthread --workers 1 \\
        --threads 8 "bench.bare_app:create_bare_app()"

The client sends the AIRisk token itself, as ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import os
import threading

import requests
from flask import Flask, Response, abort, request

_TIMEOUT = (3.05, 10.0)


def create_bare_app(base_url: str | None = None) -> Flask:
    """Create the bare app; ``base_url`` defaults to ``$AIRISK_BASE_URL``."""
    app = Flask(__name__)
    base = (base_url or os.environ["AIRISK_BASE_URL"]).rstrip("/")
    local = threading.local()

    def session() -> requests.Session:
        pooled: requests.Session | None = getattr(local, "session", None)
        if pooled is None:
            pooled = requests.Session()
            pooled.trust_env = False
            local.session = pooled
        return pooled

    def forward(path: str, params: dict[str, str | int] | None) -> Response:
        auth = request.headers.get("Authorization")
        if not auth:
            abort(401)
        upstream = session().get(
            base + path,
            params=params,
            headers={"Authorization": auth, "Accept": "application/json"},
            timeout=_TIMEOUT,
            allow_redirects=False,
        )
        return Response(
            upstream.content,
            status=upstream.status_code,
            content_type=upstream.headers.get("Content-Type", "application/json"),
        )

    @app.get("/bare/conversations")
    def conversations() -> Response:
        """Return one page of GetConversations as it came."""
        params: dict[str, str | int] = {
            "results": request.args.get("results", 20, type=int),
            "skip": request.args.get("skip", 0, type=int),
            "metadatasearch": "",
        }
        return forward("/api/Chat/GetConversations", params)

    @app.get("/bare/conversations/<cid>")
    def conversation(cid: str) -> Response:
        """Return GetConversation as it came."""
        return forward(f"/api/Chat/GetConversation/{cid}", None)

    return app
