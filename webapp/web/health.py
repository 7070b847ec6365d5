"""Liveness and readiness for load balancers: no token, no configuration shown."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify
from werkzeug.wrappers import Response

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """Answer 200 while the process serves requests (no upstream call)."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Answer 200 when the stores answer and AIRisk's API is where set, else 503.

    The configuration was validated when the app started, so a running app
    has a valid one; the stores are the parts that can fail later. A cache
    that does not answer is skipped by the pages (they stay fast), but the
    deployment is not what was configured: readiness says so, and the log
    says which part. An AIRISK_BASE_URL under which AIRisk's API answers 404
    can serve no page; an AIRisk that is down is not the deployment's fault
    (every instance would leave the pool), so only the 404 counts.
    """
    service = current_app.extensions["airisk"]
    parts = {
        "session store": current_app.session_interface.ping(),  # type: ignore[attr-defined]
        "cache": service.cache.ping(),
        "database": current_app.extensions["store"].ping(),
        "AIRisk API at AIRISK_BASE_URL": service.client.api_found() is not False,
    }
    failing = [name for name, ok in parts.items() if not ok]
    if not failing:
        return jsonify(status="ready"), 200
    log.warning("Not ready: the %s does not answer", " and the ".join(failing))
    return jsonify(status="unavailable"), 503
