"""Turn every failure into a page (or JSON) a user can act on; never a traceback."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError, SecurityError

from ..airisk import AIRiskError, RateLimited, TokenRejected
from ..airisk.scans import ClientGone, ScansBusy
from ..sessions import SessionStoreDown
from .auth import redirect_to_token_page, sign_out

log = logging.getLogger(__name__)


def _accepts_json() -> bool:
    # An API-style client (Accept: application/json) gets its errors as JSON.
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return (
        best == "application/json"
        and request.accept_mimetypes[best] > (request.accept_mimetypes["text/html"])
    )


def render_error(
    status: int, title: str, message: str, **extra: Any
) -> tuple[Response | str, int]:
    """Render the error page for ``status`` (or JSON for API-style requests)."""
    if _accepts_json():
        return jsonify(error={"status": status, "title": title, "message": message}), (
            status
        )
    page = render_template(
        [f"errors/{status}.html", "errors/error.html"],
        status=status,
        title=title,
        message=message,
        **extra,
    )
    return page, status


def handle_token_rejected(error: TokenRejected) -> ResponseReturnValue:
    """Drop the token and send the user to the token page, then back."""
    log.info("AIRisk rejected the token (%s); signing out", error.detail)
    sign_out(reason="expired")
    if _accepts_json():
        return render_error(401, error.title, error.message)
    return redirect_to_token_page("expired")


def handle_airisk_error(error: AIRiskError) -> ResponseReturnValue:
    """Show a page for a failed AIRisk call; the token is kept."""
    if not error.logged:
        log.warning("AIRisk call failed: %s", error.detail)
    response = render_error(error.status, error.title, error.message)
    if isinstance(error, RateLimited) and error.retry_after:
        body, status = response
        return body, status, {"Retry-After": str(error.retry_after)}
    return response


def handle_csrf_error(error: CSRFError) -> ResponseReturnValue:
    """Explain an expired or missing form token instead of a bare 400."""
    return render_error(
        400,
        "The form expired",
        "The page you submitted was open too long or came from another site. "
        "Nothing was changed; go back, reload the page and try again.",
    )


def handle_http_error(error: HTTPException) -> ResponseReturnValue:
    """Render Flask's own HTTP errors (404, 405, 413, ...) with our layout."""
    status = error.code or 500
    if isinstance(error, SessionStoreDown):
        return render_error(status, error.title, error.description or error.name)
    return render_error(status, error.name, _HTTP_MESSAGES.get(status, error.name))


def handle_scans_busy(error: ScansBusy) -> ResponseReturnValue:
    """Ask the user to wait for one of their running scans."""
    return render_error(error.status, error.title, error.message)


def handle_untrusted_host(error: SecurityError) -> ResponseReturnValue:
    """Refuse a Host outside TRUSTED_HOSTS in plain text.

    Without a trusted host Flask cannot build URLs, so no template can render.
    """
    return (
        "Bad request: this host name is not served here.\n",
        400,
        {"Content-Type": "text/plain; charset=utf-8"},
    )


def handle_client_gone(error: ClientGone) -> ResponseReturnValue:
    """Answer nobody: the client hung up while its request waited on a scan."""
    # 499 is nginx's "client closed request", for the access log only.
    return "", 499


def handle_unexpected(error: Exception) -> ResponseReturnValue:
    """Log an unexpected error with its traceback; show the user a plain page."""
    original = getattr(error, "original_exception", None) or error
    log.error(
        "Unexpected error on %s %s", request.method, request.path, exc_info=original
    )
    return render_error(
        500,
        "Something went wrong",
        "The dashboard hit an unexpected error. It has been logged; try again.",
    )


_HTTP_MESSAGES = {
    400: "The request could not be understood.",
    404: "There is no page at this address.",
    405: "This address does not accept that kind of request.",
    413: "The request is too large.",
}


def init_app(app: Flask) -> None:
    """Register the error handlers on ``app``."""
    app.register_error_handler(TokenRejected, handle_token_rejected)
    app.register_error_handler(AIRiskError, handle_airisk_error)
    app.register_error_handler(CSRFError, handle_csrf_error)
    app.register_error_handler(ClientGone, handle_client_gone)
    app.register_error_handler(ScansBusy, handle_scans_busy)
    app.register_error_handler(SecurityError, handle_untrusted_host)
    app.register_error_handler(InternalServerError, handle_unexpected)
    app.register_error_handler(HTTPException, handle_http_error)
