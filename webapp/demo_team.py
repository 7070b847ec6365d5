"""``airisk-viewer demo --team``: the demo AIRisk API, a real SSO provider, the
dashboard in team mode, all on loopback, and how to sign in."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Callable
from typing import Any

from werkzeug.serving import run_simple

#: The demo SSO client; its secret is drawn afresh for every run.
SSO_CLIENT_ID = "airisk-viewer-demo-sso"


def team_settings(
    host: str, port: int, api_url: str, issuer: str, sso_secret: str
) -> dict[str, Any]:
    """Return the dashboard's team-mode settings for the demo."""
    from .demo_api import DEFAULT_CLIENT
    from .demo_api.idp import REVIEWER_GROUP

    return {
        "AUTH_MODE": "team",
        "AIRISK_BASE_URL": api_url,
        "OIDC_ISSUER": issuer,
        "OIDC_CLIENT_ID": SSO_CLIENT_ID,
        "OIDC_CLIENT_SECRET": sso_secret,
        "REVIEWER_GROUPS": [REVIEWER_GROUP],
        # sam (a reviewer in "security") also reads the access trail.
        "AUDITOR_GROUPS": ["security"],
        "AIRISK_CLIENT_ID": DEFAULT_CLIENT.client_id,
        "AIRISK_CLIENT_SECRET": DEFAULT_CLIENT.client_secret,
        "AIRISK_REDIRECT_URI": f"http://{host}:{port}/airisk/callback",
    }


def demo_team(
    host: str,
    port: int,
    api_port: int,
    idp_port: int,
    secret_key: str,
    handler: Any,
    serve: Callable[..., None] = run_simple,
) -> int:
    """Start the demo API and the SSO provider, then the dashboard in team mode."""
    from . import create_app
    from .demo_api import DEFAULT_CLIENT, DemoOAuthClient, create_demo_app
    from .demo_api.idp import (
        MEMBERS,
        NO_AIRISK_ACCOUNT,
        PASSWORD,
        REVIEWERS,
        DemoIdentityProvider,
        ProviderUnavailable,
    )
    from .demo_api.server import DemoServer

    dashboard = [f"http://{name}:{port}" for name in (host, "localhost")]
    client = DemoOAuthClient(
        DEFAULT_CLIENT.client_id,
        DEFAULT_CLIENT.client_secret,
        tuple(f"{base}/airisk/callback" for base in dashboard),
    )
    api = DemoServer(create_demo_app(oauth_client=client), "127.0.0.1", api_port)
    sso_secret = secrets.token_urlsafe(32)
    idp = DemoIdentityProvider(
        [
            {
                "client_id": SSO_CLIENT_ID,
                "client_secret": sso_secret,
                "redirect_uris": [f"{base}/sso/callback" for base in dashboard],
                "post_logout_redirect_uris": [
                    f"{base}/sso/signed-out" for base in dashboard
                ],
            }
        ],
        port=idp_port,
    )
    try:
        api.start()
        idp.start()
    except (OSError, ProviderUnavailable) as exc:
        api.stop()
        print(f"Cannot start the team demo: {exc}", file=sys.stderr)
        return 1
    try:
        settings = team_settings(host, port, api.url, idp.issuer, sso_secret)
        app = create_app({**settings, "SECRET_KEY": secret_key})
        from .store.migrate import upgrade

        upgrade(app.extensions["store"])
        print(f"Demo AIRisk API:   {api.url}/api")
        print(f"Demo SSO provider: {idp.issuer}")
        print(f"Dashboard (team):  http://{host}:{port}/")
        print(f"Sign in with any of these (password {PASSWORD}):")
        print(f"  {', '.join(REVIEWERS)}  reviewers: pick anyone's history")
        print("  sam is also an auditor: reads the access trail at /audit")
        print(f"  {', '.join(MEMBERS)}  members: their own history only")
        print(f"  {NO_AIRISK_ACCOUNT}  a person with no AIRisk account")
        sys.stdout.flush()
        serve(host, port, app, threaded=True, request_handler=handler)
    finally:
        idp.stop()
        api.stop()
    return 0
