"""Security headers on every response, and CSRF protection on every POST."""

from __future__ import annotations

from flask import Flask, Response, current_app, request
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
        "img-src 'self'",
    ]
)

_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    # Flask-WTF checks a same-origin Referer on HTTPS, so "no-referrer" would
    # break every form there; this keeps the path private cross-origin.
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def _set_headers(response: Response) -> Response:
    for name, value in _HEADERS.items():
        response.headers.setdefault(name, value)
    if request.is_secure:
        response.headers.setdefault(
            "Strict-Transport-Security", "max-age=31536000; includeSubDomains"
        )
    if request.endpoint != "static":
        # Pages show conversation data or carry a CSRF token: never cache them.
        response.headers["Cache-Control"] = "no-store"
    return response


#: Endpoints that take a file upload larger than MAX_CONTENT_LENGTH.
_UPLOADS = {"evidence.verify": "EVIDENCE_VERIFY_MAX_BYTES"}


def _upload_limit() -> None:
    # Runs before the CSRF check reads the form, which is when the size
    # limit applies; every other POST keeps the small default.
    setting = _UPLOADS.get(str(request.endpoint))
    if setting:
        request.max_content_length = current_app.config[setting]


def init_app(app: Flask) -> None:
    """Enable CSRF protection and the security headers on ``app``."""
    app.before_request(_upload_limit)
    csrf.init_app(app)
    app.after_request(_set_headers)
