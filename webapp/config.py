"""Read the dashboard's configuration: defaults, then environment, then tests.

This is the only module that reads ``os.environ``. Every setting has a default
in :class:`Defaults` and a row in the README's configuration table (a test
checks that the table is complete).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit


class ConfigError(RuntimeError):
    """A setting is missing or invalid; the message says which and how to fix it."""


class Defaults:
    """Default value of every setting the dashboard reads."""

    #: Base URL of the customer's AIRisk host; API paths are appended to it.
    AIRISK_BASE_URL: str = "https://demo.aicrisk.com"
    #: Seconds to wait for a TCP/TLS connection to AIRisk.
    AIRISK_CONNECT_TIMEOUT: float = 3.05
    #: Seconds to wait for AIRisk to send the next byte.
    AIRISK_READ_TIMEOUT: float = 10.0
    #: Total seconds one upstream call may take, body included.
    AIRISK_DEADLINE: float = 15.0
    #: Largest upstream response body accepted, in bytes.
    AIRISK_MAX_RESPONSE_BYTES: int = 20 * 1024 * 1024
    #: Extra attempts for a GET that failed to connect or got 502/503/504.
    AIRISK_RETRIES: int = 1
    #: Seconds the agent list (ListAgents) is reused per token.
    AIRISK_AGENTS_TTL: int = 300
    #: Seconds a list page or a conversation is reused per token.
    AIRISK_CACHE_TTL: int = 60
    #: Seconds a finished whole-history scan (search) is reused per token.
    AIRISK_SCAN_TTL: int = 300
    #: Most conversations one whole-history scan reads.
    AIRISK_SCAN_MAX: int = 100_000
    #: Distinct scans (search, insights, attachment checks) one token may run
    #: at once in a process; identical ones share a scan and count once.
    AIRISK_SCANS_PER_TOKEN: int = 2
    #: Most conversations one "Has attachments" filter opens per request.
    AIRISK_ATTACHMENT_CHECKS: int = 1000
    #: Rendered list rows kept per process for lists seen again (0: none).
    LIST_ROW_CACHE: int = 4096
    #: Bytes of rendered Markdown kept per process for messages seen again.
    RENDER_CACHE_BYTES: int = 32 * 1024 * 1024

    #: Signs cookies and derives the key that encrypts tokens at rest.
    SECRET_KEY: str | None = None
    #: Comma-separated older secret keys: still accepted, never used to write.
    SECRET_KEY_FALLBACKS: list[str] | None = None
    #: Where sessions live: "filesystem" (one instance) or "redis" (shared).
    SESSION_BACKEND: str = "filesystem"
    #: Where upstream answers are cached: "memory" (per process) or "redis".
    CACHE_BACKEND: str = "memory"
    #: Redis for SESSION_BACKEND/CACHE_BACKEND=redis; rediss:// for TLS.
    REDIS_URL: str = "redis://127.0.0.1:6379/0"
    #: Seconds the Redis cache may take to answer before a page skips it.
    CACHE_REDIS_TIMEOUT: float = 0.25
    #: Folder of the filesystem session store (default: instance/sessions).
    SESSION_DIR: str | None = None
    #: Minutes without a request after which a signed-in session ends.
    SESSION_IDLE_MINUTES: int = 30
    #: Hours after token entry at which a session ends regardless of use.
    SESSION_ABSOLUTE_HOURS: int = 8
    #: Most signed-in sessions kept; past it new sign-ins are refused.
    SESSION_MAX_SIGNED_IN: int = 10_000
    #: Most signed-in sessions per client address; past it its oldest end.
    SESSION_MAX_PER_CLIENT: int = 100
    #: Seconds the session Redis may take to answer (no retries).
    SESSION_REDIS_TIMEOUT: float = 1.0
    #: Send the session cookie over HTTPS only. Set to 1 behind TLS.
    SESSION_COOKIE_SECURE: bool = False
    #: Reverse proxies in front (their X-Forwarded-For/-Proto/-Host are trusted).
    TRUSTED_PROXIES: int = 0
    #: "text" or "json" (one JSON object per line) for the dashboard's logs.
    LOG_FORMAT: str = "text"
    #: Level of the dashboard's logs: DEBUG, INFO, WARNING or ERROR.
    LOG_LEVEL: str = "INFO"
    #: Comma-separated host names the dashboard answers to (empty: any).
    TRUSTED_HOSTS: list[str] | None = None
    #: The dashboard's address as reviewers open it (exports' evidence URL).
    PUBLIC_URL: str | None = None
    #: Ed25519 key that signs exports: 64 hex digits or a PEM (default: one
    #: generated once into EVIDENCE_KEY_FILE).
    EVIDENCE_SIGNING_KEY: str | None = None
    #: Comma-separated public keys (64 hex digits) of earlier signing keys:
    #: exports they signed still verify after a key rotation.
    EVIDENCE_PREVIOUS_KEYS: list[str] | None = None
    #: File a generated signing key is kept in (default: instance/evidence-key).
    EVIDENCE_KEY_FILE: str | None = None
    #: Name signatures give this deployment (default: PUBLIC_URL's host).
    EVIDENCE_DEPLOYMENT: str | None = None
    #: Largest file the /verify page accepts, in bytes.
    EVIDENCE_VERIFY_MAX_BYTES: int = 32 * 1024 * 1024

    #: "token" (each person pastes an AIRisk token) or "team" (SSO sign-in;
    #: the dashboard mints AIRisk tokens as an OAuth2 API client).
    AUTH_MODE: str = "token"
    #: Team mode: the OpenID Connect issuer URL (its discovery document is
    #: at <issuer>/.well-known/openid-configuration).
    OIDC_ISSUER: str | None = None
    #: Team mode: the dashboard's client id at the SSO provider.
    OIDC_CLIENT_ID: str | None = None
    #: Team mode: the dashboard's client secret at the SSO provider.
    OIDC_CLIENT_SECRET: str | None = None
    #: Team mode: space-separated scopes asked of the SSO provider.
    OIDC_SCOPES: str = "openid email profile groups"
    #: Team mode: the ID token claim that lists a person's groups or roles.
    OIDC_GROUPS_CLAIM: str = "groups"
    #: Team mode: comma-separated SSO groups (or roles) whose members are
    #: reviewers; everyone else who signs in is a member.
    REVIEWER_GROUPS: list[str] | None = None
    #: Team mode: the dashboard's AIRisk API client id.
    AIRISK_CLIENT_ID: str | None = None
    #: Team mode: the dashboard's AIRisk API client secret.
    AIRISK_CLIENT_SECRET: str | None = None
    #: Team mode: the redirect URI registered for the AIRisk API client (the
    #: dashboard's /airisk/callback).
    AIRISK_REDIRECT_URI: str | None = None
    #: Team mode: "server" (authorize without a browser) or "browser".
    AIRISK_OAUTH2_FLOW: str = "server"
    #: Team mode: seconds before its expiration a minted token is replaced.
    AIRISK_TOKEN_MARGIN: int = 60
    #: Team mode: comma-separated SSO groups (or roles) whose members are
    #: auditors: they read the access trail (/audit).
    AUDITOR_GROUPS: list[str] | None = None

    #: The database of review states, notes and the access trail: a
    #: SQLAlchemy URL (postgresql://user:pass@host/db for several instances);
    #: empty: SQLite in the instance folder (instance/airisk-viewer.db).
    DATABASE_URL: str | None = None
    #: Record every data view, review change and sign-in in the access trail.
    #: Turn off only to measure its cost (make bench); off, nothing is kept.
    AUDIT_TRAIL: bool = True
    #: Days of access trail kept by `airisk-viewer audit prune` (0: forever).
    AUDIT_RETENTION_DAYS: int = 400


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_MIN_SECRET_LENGTH = 24


def setting_names() -> list[str]:
    """Return the names of all settings, in declaration order."""
    return list(Defaults.__annotations__)


def _convert(name: str, raw: str) -> Any:
    default = getattr(Defaults, name)
    annotation = Defaults.__annotations__[name]
    try:
        if isinstance(default, bool):
            value = raw.strip().lower()
            if value in _TRUE:
                return True
            if value in _FALSE:
                return False
            raise ValueError(raw)
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a {type(default).__name__}.") from None
    if "list" in str(annotation):
        items = [item.strip() for item in raw.split(",")]
        return [item for item in items if item] or None
    return raw


def load(
    environ: Mapping[str, str] | None = None,
    test_config: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the settings: defaults, overridden by environment, then by tests.

    :raises ConfigError: when a value cannot be converted.
    """
    environ = os.environ if environ is None else environ
    config = {name: getattr(Defaults, name) for name in setting_names()}
    for name in setting_names():
        if name in environ:
            config[name] = _convert(name, environ[name])
    if test_config:
        config.update(test_config)
    return config


def validate(config: Mapping[str, Any], *, allow_generated_secret: bool) -> None:
    """Check settings that would make the dashboard unsafe or useless.

    :raises ConfigError: with a message that names the setting and the fix.
    """
    base = urlsplit(str(config["AIRISK_BASE_URL"]))
    if base.scheme not in {"http", "https"} or not base.hostname:
        raise ConfigError(
            "AIRISK_BASE_URL must be an absolute http(s) URL such as "
            "https://yourcompany.aicrisk.com"
        )
    if base.query or base.fragment:
        raise ConfigError("AIRISK_BASE_URL must not carry a query or fragment.")
    public = config.get("PUBLIC_URL")
    if public:
        parts = urlsplit(str(public))
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ConfigError(
                "PUBLIC_URL must be the dashboard's absolute http(s) address, "
                "such as https://reviews.example.com"
            )
        if parts.query or parts.fragment:
            raise ConfigError("PUBLIC_URL must not carry a query or fragment.")
    if config["LOG_FORMAT"] not in {"text", "json"}:
        raise ConfigError('LOG_FORMAT must be "text" or "json".')
    if config["LOG_LEVEL"] not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError("LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR.")
    if config["TRUSTED_PROXIES"] < 0:
        raise ConfigError("TRUSTED_PROXIES must not be negative.")
    if config["SESSION_BACKEND"] not in {"filesystem", "redis"}:
        raise ConfigError('SESSION_BACKEND must be "filesystem" or "redis".')
    if config["CACHE_BACKEND"] not in {"memory", "redis"}:
        raise ConfigError('CACHE_BACKEND must be "memory" or "redis".')
    if "redis" in {config["SESSION_BACKEND"], config["CACHE_BACKEND"]}:
        if urlsplit(str(config["REDIS_URL"])).scheme not in {"redis", "rediss", "unix"}:
            raise ConfigError(
                "REDIS_URL must start with redis://, rediss:// or unix://"
            )
    secret = config.get("SECRET_KEY")
    if not allow_generated_secret:
        if not secret:
            raise ConfigError(
                "SECRET_KEY is not set. It signs cookies and encrypts tokens at "
                "rest; generate one with: python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'"
            )
        if len(str(secret)) < _MIN_SECRET_LENGTH:
            raise ConfigError(
                f"SECRET_KEY is too short: use at least {_MIN_SECRET_LENGTH} "
                "random characters."
            )
    for name in (
        "AIRISK_CONNECT_TIMEOUT",
        "AIRISK_READ_TIMEOUT",
        "AIRISK_DEADLINE",
        "AIRISK_MAX_RESPONSE_BYTES",
        "SESSION_IDLE_MINUTES",
        "SESSION_ABSOLUTE_HOURS",
        "SESSION_MAX_SIGNED_IN",
        "SESSION_MAX_PER_CLIENT",
        "SESSION_REDIS_TIMEOUT",
        "AIRISK_SCAN_MAX",
        "AIRISK_SCANS_PER_TOKEN",
        "AIRISK_ATTACHMENT_CHECKS",
        "CACHE_REDIS_TIMEOUT",
        "EVIDENCE_VERIFY_MAX_BYTES",
    ):
        if not config[name] or config[name] <= 0:
            raise ConfigError(f"{name} must be greater than zero.")
    _validate_team(config)
    for name in (
        "AIRISK_RETRIES",
        "AIRISK_AGENTS_TTL",
        "AIRISK_CACHE_TTL",
        "AIRISK_SCAN_TTL",
        "LIST_ROW_CACHE",
        "RENDER_CACHE_BYTES",
        "AUDIT_RETENTION_DAYS",
    ):
        if config[name] < 0:
            raise ConfigError(f"{name} must not be negative.")


def _validate_team(config: Mapping[str, Any]) -> None:
    """Check the team-mode settings (SSO and the AIRisk API client)."""
    if config["AUTH_MODE"] not in {"token", "team"}:
        raise ConfigError('AUTH_MODE must be "token" or "team".')
    if config["AIRISK_OAUTH2_FLOW"] not in {"server", "browser"}:
        raise ConfigError('AIRISK_OAUTH2_FLOW must be "server" or "browser".')
    if config["AIRISK_TOKEN_MARGIN"] < 0:
        raise ConfigError("AIRISK_TOKEN_MARGIN must not be negative.")
    if config["AUTH_MODE"] != "team":
        return
    for name in (
        "OIDC_ISSUER",
        "OIDC_CLIENT_ID",
        "OIDC_CLIENT_SECRET",
        "AIRISK_CLIENT_ID",
        "AIRISK_CLIENT_SECRET",
        "AIRISK_REDIRECT_URI",
    ):
        if not config.get(name):
            raise ConfigError(f"AUTH_MODE=team needs {name} (see the README).")
    if not config.get("REVIEWER_GROUPS"):
        raise ConfigError(
            "AUTH_MODE=team needs REVIEWER_GROUPS: the SSO groups whose members "
            "may review everyone's history."
        )
    if "openid" not in str(config["OIDC_SCOPES"]).split():
        raise ConfigError('OIDC_SCOPES must include "openid".')
    for name in ("OIDC_ISSUER", "AIRISK_REDIRECT_URI"):
        parts = urlsplit(str(config[name]))
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ConfigError(f"{name} must be an absolute http(s) URL.")
        if parts.scheme == "http" and parts.hostname not in {"127.0.0.1", "localhost"}:
            raise ConfigError(f"{name} must use https (http only on loopback).")
