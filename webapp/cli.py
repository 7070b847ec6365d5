"""The ``airisk-viewer`` command: run the dashboard or the demo, verify exports."""

from __future__ import annotations

import argparse
import secrets
import sys
import urllib.request
from collections.abc import Sequence
from http.client import HTTPMessage
from pathlib import Path
from typing import IO, Any, cast
from urllib.parse import urlsplit

from flask import Flask
from werkzeug.serving import WSGIRequestHandler, run_simple

from . import ConfigError, config, create_app
from .core import signatures
from .web import evidence


class QuietRequestHandler(WSGIRequestHandler):
    """werkzeug's handler without the version-revealing ``Server`` header."""

    server_version = "airisk-viewer"
    sys_version = ""

    def version_string(self) -> str:
        """Return the ``Server`` header value: the product name only."""
        return self.server_version


def _demo_secret_key() -> str:
    """Return a random key kept beside the session store it protects, so demo
    sessions survive a restart of ``make run``."""
    session_dir = config.load()["SESSION_DIR"]
    if session_dir:
        path = Path(session_dir)
    else:
        path = Path(Flask("webapp", instance_relative_config=True).instance_path)
        path = path / "sessions"
    path.mkdir(parents=True, exist_ok=True)
    key_file = path / "demo-secret-key"
    if not key_file.exists():
        key_file.touch(mode=0o600)
        key_file.write_text(secrets.token_urlsafe(32))
    return key_file.read_text().strip()


def _store(app: Flask) -> Any:
    from .store import Store

    return cast(Store, app.extensions["store"])


def db_upgrade(app: Flask) -> int:
    """Bring the database to the newest migration; 1 if it does not answer."""
    from .store import StoreUnavailable
    from .store.migrate import upgrade

    store = _store(app)
    try:
        upgrade(store)
    except StoreUnavailable as exc:
        print(f"The database does not answer: {exc}", file=sys.stderr)
        return 1
    print(f"Database is at the newest migration ({store.dialect}).")
    sys.stdout.flush()
    return 0


def audit_verify(app: Flask) -> int:
    """Walk the access trail's hash chain; 1 and the first broken link if any."""
    from .store import trail

    verdict = trail.verify(_store(app))
    if verdict.ok:
        print(f"Access trail intact: {verdict.rows} rows.")
        return 0
    print(f"Access trail BROKEN at seq {verdict.seq}: {verdict.problem}")
    return 1


def audit_prune(app: Flask, days: int | None) -> int:
    """Delete trail rows older than the retention; leave a row saying so."""
    import getpass

    from .store import trail

    keep = app.config["AUDIT_RETENTION_DAYS"] if days is None else days
    if not keep:
        print("AUDIT_RETENTION_DAYS is 0: the access trail is kept forever.")
        return 0
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    by = trail.Event(subject=f"command:{user}", action="audit.prune")
    deleted = trail.prune(_store(app), keep, by)
    print(f"Deleted {deleted} access-trail rows older than {keep} days.")
    return 0


def demo(
    host: str, port: int, api_port: int, latency_ms: int, max_results: int | None
) -> int:
    """Start the demo AIRisk API in the background and the dashboard in front."""
    from .demo_api import DEMO_TOKENS, create_demo_app
    from .demo_api.server import DemoServer

    upstream = create_demo_app(latency_ms=latency_ms, max_results=max_results)
    api = DemoServer(upstream, "127.0.0.1", api_port)
    try:
        api.start()
    except OSError as exc:
        print(f"Cannot start the demo API on port {api_port}: {exc}", file=sys.stderr)
        return 1
    app = create_app({"AIRISK_BASE_URL": api.url, "SECRET_KEY": _demo_secret_key()})
    if db_upgrade(app):
        api.stop()
        return 1
    print(f"Demo AIRisk API: {api.url}/api (latency {latency_ms} ms)")
    print(f"Dashboard:       http://{host}:{port}/")
    print("Demo tokens to paste on the token page:")
    width = max(len(token) for token in DEMO_TOKENS)
    for token, description in DEMO_TOKENS.items():
        print(f"  {token:<{width}}  {description}")
    sys.stdout.flush()
    try:
        run_simple(host, port, app, threaded=True, request_handler=QuietRequestHandler)
    finally:
        api.stop()
    return 0


def serve(host: str, port: int, workers: int, threads: int, timeout: int) -> int:
    """Run the dashboard under gunicorn with threaded workers (production)."""
    from gunicorn.app.base import BaseApplication

    # Build the app first: a missing SECRET_KEY or a bad setting stops here
    # with a clear message instead of inside every worker.
    app = create_app()
    # Once, before the workers fork: each then opens its own connections.
    if db_upgrade(app):
        return 1
    _store(app).dispose()
    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        # A whole-history scan streams for as long as AIRisk takes to page.
        "timeout": timeout,
        "graceful_timeout": 30,
        "keepalive": 5,
        # The dashboard logs each request itself (without query values).
        "accesslog": None,
        "errorlog": "-",
        # Which proxies to believe is TRUSTED_PROXIES's job (ProxyFix in the
        # app); gunicorn would otherwise take X-Forwarded-Proto from any
        # loopback client, even with TRUSTED_PROXIES=0.
        "forwarded_allow_ips": "",
    }

    class Server(BaseApplication):
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)
            if "control_socket_disable" in self.cfg.settings:
                # gunicorn 27+ would open a control socket in $HOME.
                self.cfg.set("control_socket_disable", True)

        def load(self) -> Flask:
            return app

    print(f"Serving on http://{host}:{port}/ ({workers} workers x {threads} threads)")
    sys.stdout.flush()
    Server().run()
    return 0


def _read_keys(source: str | None) -> dict[str, signatures.Ed25519PublicKey]:
    """Return the public keys at ``source`` (URL or file), else this deployment's.

    :raises OSError: if the URL or file cannot be read.
    :raises signatures.BadKey: if what it holds is not a key.
    """
    if source is None:
        # No --key: the keys this deployment's settings name (never a new one).
        instance = Flask("webapp", instance_relative_config=True).instance_path
        return evidence.published_keys(config.load(), instance)
    if source.startswith(("https://", "http://")):
        _check_keys_url(source)
        # A keys document is public and small; the stdlib client is enough.
        opener = urllib.request.build_opener(_CheckedRedirects)
        with opener.open(source, timeout=15) as answer:
            text = answer.read(1024 * 1024).decode("utf-8")
    else:
        text = Path(source).read_text(encoding="utf-8")
    return signatures.parse_keys(text)


def _check_keys_url(url: str) -> None:
    """Refuse a keys address anyone on the way could answer for.

    :raises OSError: unless ``url`` is https, or http on loopback.
    """
    parts = urlsplit(url)
    loopback = parts.hostname in {"127.0.0.1", "::1", "localhost"}
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise OSError(
            f"refusing to fetch keys from {url}: use https (http only on loopback)."
        )


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to an address :func:`_check_keys_url` accepts."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        """Check where a redirect leads before following it."""
        # An https keys address redirected to plain http would undo the check.
        _check_keys_url(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def verify(path: str, key: str | None) -> int:
    """Check an exported file's signature; print the verdict, return 0 if valid."""
    try:
        data = Path(path).read_bytes()
        keys = _read_keys(key)
    except (OSError, ValueError, ConfigError) as exc:
        print(f"Cannot verify: {exc}", file=sys.stderr)
        return 2
    verdict = signatures.verify(data, keys)
    print(verdict.summary())
    return 0 if verdict.valid else 1


def _database_command(args: argparse.Namespace) -> int:
    from .store import StoreUnavailable

    # The commands need no SECRET_KEY: nothing is signed or decrypted.
    app = create_app({"SECRET_KEY": config.load()["SECRET_KEY"] or "x" * 32})
    try:
        if args.command == "db":
            return db_upgrade(app)
        if args.action == "verify":
            return audit_verify(app)
        return audit_prune(app, args.days)
    except StoreUnavailable as exc:
        print(f"The database does not answer: {exc}", file=sys.stderr)
        return 1
    finally:
        _store(app).dispose()


_MAX_HELP = "serve at most this many rows per GetConversations page, as AIRisk may"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="airisk-viewer", description="Review AIRisk conversation history."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run_demo = commands.add_parser(
        "demo", help="run the dashboard against the built-in demo AIRisk API"
    )
    run_demo.add_argument("--host", default="127.0.0.1")
    run_demo.add_argument("--port", type=int, default=5000)
    run_demo.add_argument("--api-port", type=int, default=5001)
    run_demo.add_argument("--latency-ms", type=int, default=0)
    run_demo.add_argument("--max-results", type=int, default=None, help=_MAX_HELP)
    run_demo.add_argument(
        "--team",
        action="store_true",
        help="team mode: also start a demo SSO provider (needs Node.js, make "
        "oidc-deps); sign in as a demo person instead of pasting a token",
    )
    run_demo.add_argument("--idp-port", type=int, default=5002)
    run_serve = commands.add_parser(
        "serve", help="run the dashboard under gunicorn (configure with env vars)"
    )
    run_serve.add_argument("--host", default="127.0.0.1")
    run_serve.add_argument("--port", type=int, default=8000)
    run_serve.add_argument("--workers", type=int, default=2)
    run_serve.add_argument("--threads", type=int, default=8)
    run_serve.add_argument("--timeout", type=int, default=120)
    run_api = commands.add_parser("demo-api", help="run the demo AIRisk API alone")
    run_api.add_argument("--host", default="127.0.0.1")
    run_api.add_argument("--port", type=int, default=5001)
    run_api.add_argument("--latency-ms", type=int, default=0)
    run_api.add_argument("--max-results", type=int, default=None, help=_MAX_HELP)
    run_verify = commands.add_parser(
        "verify", help="check an exported file's signature (exit 0 if valid)"
    )
    run_verify.add_argument("file")
    run_verify.add_argument(
        "--key",
        help="public keys: a URL or file (keys JSON, hex or PEM); "
        "default: this deployment's keys",
    )
    run_db = commands.add_parser("db", help="the review and access-trail database")
    run_db.add_argument("action", choices=["upgrade"], help="apply migrations")
    run_audit = commands.add_parser("audit", help="check or prune the access trail")
    run_audit.add_argument("action", choices=["verify", "prune"])
    run_audit.add_argument(
        "--days", type=int, default=None, help="keep this many days (prune)"
    )
    args = parser.parse_args(argv)
    if args.command == "verify":
        return verify(args.file, args.key)
    if min(getattr(args, "latency_ms", 0), 0) < 0:
        parser.error("--latency-ms must not be negative")
    if getattr(args, "max_results", None) is not None and args.max_results < 1:
        parser.error("--max-results must be at least 1")
    try:
        if args.command in {"db", "audit"}:
            return _database_command(args)
        if args.command == "serve":
            return serve(args.host, args.port, args.workers, args.threads, args.timeout)
        if args.command == "demo" and args.team:
            from .demo_team import demo_team

            return demo_team(
                args.host,
                args.port,
                args.api_port,
                args.idp_port,
                _demo_secret_key(),
                QuietRequestHandler,
            )
        if args.command == "demo":
            return demo(
                args.host, args.port, args.api_port, args.latency_ms, args.max_results
            )
        from .demo_api.server import serve_demo_api

        serve_demo_api(args.host, args.port, args.latency_ms, args.max_results)
        return 0
    except ConfigError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
