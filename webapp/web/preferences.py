"""Per-browser display preferences (a cookie, not the session)."""

from __future__ import annotations

from flask import Blueprint, redirect, request
from werkzeug.wrappers import Response

from .auth import safe_next

bp = Blueprint("preferences", __name__)

THEMES = {"light", "dark"}
THEME_COOKIE = "theme"


def current_theme() -> str | None:
    """Return "light" or "dark" if the user chose one, else None (follow system)."""
    value = request.cookies.get(THEME_COOKIE)
    return value if value in THEMES else None


@bp.post("/theme")
def theme() -> Response:
    """Remember a light/dark choice (or "auto") and go back to the page."""
    response = redirect(safe_next(request.form.get("back")), code=303)
    choice = request.form.get("theme", "")
    if choice in THEMES:
        response.set_cookie(
            THEME_COOKIE,
            choice,
            max_age=365 * 24 * 3600,
            httponly=True,
            samesite="Lax",
            secure=request.is_secure,
        )
    else:
        response.delete_cookie(THEME_COOKIE)
    return response
