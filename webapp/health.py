"""Liveness and readiness for load balancers: no token, no configuration shown."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from werkzeug.wrappers import Response

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """Answer 200 while the process serves requests (no upstream call)."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Answer 200 when the session store answers, else 503.

    The configuration was validated when the app started, so a running app
    has a valid one; the store is the part that can fail later.
    """
    if current_app.session_interface.ping():  # type: ignore[attr-defined]
        return jsonify(status="ready"), 200
    return jsonify(status="unavailable"), 503
