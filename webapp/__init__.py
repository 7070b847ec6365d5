"""AIRisk conversation viewer: a Flask dashboard for reviewing AIRisk history."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from . import config as config_module
from . import sessions
from .airisk import AIRiskClient, ClientSettings
from .airisk.cache import Cache, RedisCache, TTLCache
from .airisk.service import AIRiskService, CachePolicy
from .config import ConfigError
from .sessions import TokenCipher

__all__ = ["ConfigError", "create_app"]


def _asset_folder(name: str) -> str:
    """Find ``templates``/``static``: in the installed package, else the checkout."""
    package = Path(__file__).resolve().parent
    installed = package / name
    return str(installed if installed.is_dir() else package.parent / name)


def _make_cache(config: Mapping[str, Any]) -> Cache:
    """Return the upstream-answer cache the configuration asks for."""
    if config["CACHE_BACKEND"] == "redis":
        # A cache is optional: a short timeout and no retries, so a Redis
        # that does not answer costs a page a fraction of a second, once.
        client = sessions.redis_client(
            config["REDIS_URL"], timeout=config["CACHE_REDIS_TIMEOUT"], retry=False
        )
        secret = str(config["SECRET_KEY"])
        return RedisCache(
            client,
            TokenCipher(secret, purpose="cache value encryption"),
            sessions.derive_key(secret, "cache key names"),
        )
    return TTLCache(maxsize=2048)


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Create and configure the dashboard.

    :param test_config: settings that override defaults and the environment.
    :raises ConfigError: when a setting is missing or unsafe.
    """
    app = Flask(
        __name__,
        instance_relative_config=True,
        template_folder=_asset_folder("templates"),
        static_folder=_asset_folder("static"),
    )
    settings = config_module.load(test_config=test_config)
    app.config.update(settings)
    if test_config:
        app.config.update(test_config)
    lenient = bool(app.debug or app.testing)
    config_module.validate(app.config, allow_generated_secret=lenient)
    if not app.config["SECRET_KEY"]:
        # Debug and tests only: a per-process key (sessions end on restart).
        app.config["SECRET_KEY"] = secrets.token_urlsafe(32)

    app.config.update(
        SESSION_COOKIE_NAME="session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # Re-saving on every request would let a slow request write back a
        # session that was signed out meanwhile.
        SESSION_REFRESH_EACH_REQUEST=False,
        PERMANENT_SESSION_LIFETIME=timedelta(
            hours=app.config["SESSION_ABSOLUTE_HOURS"]
        ),
        MAX_CONTENT_LENGTH=64 * 1024,
        # The CSRF token lives as long as the session that holds it.
        WTF_CSRF_TIME_LIMIT=None,
    )

    sessions.init_app(app)
    app.extensions["airisk_cipher"] = TokenCipher(
        app.config["SECRET_KEY"], app.config.get("SECRET_KEY_FALLBACKS") or ()
    )
    client = AIRiskClient(
        ClientSettings(
            base_url=app.config["AIRISK_BASE_URL"],
            connect_timeout=app.config["AIRISK_CONNECT_TIMEOUT"],
            read_timeout=app.config["AIRISK_READ_TIMEOUT"],
            deadline=app.config["AIRISK_DEADLINE"],
            max_bytes=app.config["AIRISK_MAX_RESPONSE_BYTES"],
            retries=app.config["AIRISK_RETRIES"],
        )
    )
    app.extensions["airisk"] = AIRiskService(
        client,
        _make_cache(app.config),
        CachePolicy(
            pages=app.config["AIRISK_CACHE_TTL"],
            conversations=app.config["AIRISK_CACHE_TTL"],
            agents=app.config["AIRISK_AGENTS_TTL"],
            history=app.config["AIRISK_SCAN_TTL"],
            max_history=app.config["AIRISK_SCAN_MAX"],
            max_file_checks=app.config["AIRISK_ATTACHMENT_CHECKS"],
            scans_per_token=app.config["AIRISK_SCANS_PER_TOKEN"],
        ),
    )

    from .web import (
        audit,
        auth,
        conversations,
        errors,
        evidence,
        health,
        insights,
        logs,
        preferences,
        reviews,
        security,
        templating,
    )

    if app.config["TRUSTED_PROXIES"]:
        # Behind N reverse proxies: take scheme, host and client address from
        # their X-Forwarded-* headers (HSTS and secure cookies need the scheme).
        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops
        )
    logs.init_app(app)

    security.init_app(app)
    errors.init_app(app)
    templating.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(conversations.bp)
    app.register_blueprint(preferences.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(insights.bp)
    evidence.init_app(app)
    # Before team mode: its gate runs after the trail's before-request hook,
    # and its per-user addresses cover the review pages.
    audit.init_app(app)
    reviews.init_app(app)
    if app.config["AUTH_MODE"] == "team":
        from .web import team

        team.init_app(app)
    return app
