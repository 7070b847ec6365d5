"""A team deployment on loopback for end-to-end tests: no mocks of either side.

- the demo AIRisk API (its OAuth2 endpoints, ListUsers, chat) in a thread,
  with a clock the test can move to expire tokens;
- the real OpenID Connect provider (oidc-provider on Node.js) behind a small
  proxy that can tamper with the ID token on its way back (signature,
  audience, issuer, expiry), re-signing with the provider's own key;
- the dashboard in team mode, driven through Flask's test client, while a
  ``requests`` session plays the browser at the provider and at AIRisk.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from werkzeug.test import TestResponse
from werkzeug.wrappers import Request, Response

from webapp.demo_api import DemoOAuthClient, create_demo_app
from webapp.demo_api.idp import PASSWORD, DemoIdentityProvider
from webapp.demo_api.oauth2 import OAuthStore
from webapp.demo_api.server import DemoServer

from .app import DEMO_NOW, make_app

DASHBOARD = "http://localhost"
SSO_CLIENT_ID = "airisk-dashboard"
SSO_SECRET = "sso-secret-CANARY-5d1e9a7b3c"
AIRISK_CLIENT_ID = "dashboard-api-client"
AIRISK_SECRET = "airisk-secret-CANARY-8f2c4e6a1b"
REVIEWER_GROUP = "airisk-reviewers"


class Clock:
    """The demo API's clock: real time plus an offset a test can move."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


class Refusing:
    """WSGI middleware: a broken AIRisk, as the test asks.

    ``on`` answers 401 to chat calls (``allow``: after that many more);
    ``users`` answers 401 to ListUsers; ``authorize`` answers the authorize
    step with ``"html"`` (a 200 sign-in page) or ``"error"`` (a redirect with
    an error the contract does not list) instead of a code.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.on = False
        #: Chat calls still answered before ``on`` takes effect by itself.
        self.allow: int | None = None
        self.authorize: str | None = None
        self.users = False
        #: Chat calls that reached this wrapper (tests count AIRisk calls).
        self.chat_calls = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/api/Chat/"):
            self.chat_calls += 1
        if self.allow is not None and path.startswith("/api/Chat/"):
            self.allow -= 1
            self.on = self.allow < 0
        if self.on and path.startswith("/api/Chat/"):
            return Response("", status=401)(environ, start_response)
        if self.users and path.startswith("/api/Users/"):
            return Response("", status=401)(environ, start_response)
        if self.authorize and path == "/api/oauth2":
            if self.authorize == "html":
                page = Response("<html><form>Sign in to AIRisk</form></html>")
                page.content_type = "text/html"
                return page(environ, start_response)
            back = Response(status=302)
            back.headers["Location"] = (
                f"{DASHBOARD}/airisk/callback?error=%3Cscript%3E&state=x"
            )
            return back(environ, start_response)
        return self.app(environ, start_response)


class TamperingProxy:
    """Forward to the provider; rewrite the ID token of /token answers."""

    def __init__(self, key: RSAKey) -> None:
        self.key = key
        self.upstream = ""
        self.mode: str | None = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        answer = requests.request(
            request.method,
            self.upstream + request.full_path.rstrip("?"),
            headers={
                k: v
                for k, v in request.headers.items()
                if k.lower() != "content-length"
            },
            data=request.get_data(),
            allow_redirects=False,
            timeout=10,
        )
        body = answer.content
        if request.path == "/token" and answer.status_code == 200 and self.mode:
            payload = answer.json()
            payload["id_token"] = self._tamper(payload["id_token"])
            body = json.dumps(payload).encode()
        response = Response(body, status=answer.status_code)
        for name, value in answer.raw.headers.items():
            if name.lower() not in {
                "content-length",
                "transfer-encoding",
                "connection",
            }:
                response.headers.add(name, value)
        return response(environ, start_response)

    def _tamper(self, id_token: str) -> str:
        header, claims, signature = id_token.split(".")
        if self.mode == "bad_signature":
            raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
            raw[0] ^= 0xFF
            return (
                f"{header}.{claims}."
                + base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
            )
        values = json.loads(base64.urlsafe_b64decode(claims + "=="))
        if self.mode == "wrong_audience":
            values["aud"] = "some-other-application"
        elif self.mode == "wrong_issuer":
            values["iss"] = "http://127.0.0.1:9/evil"
        elif self.mode == "expired":
            values["iat"] = int(time.time()) - 7200
            values["exp"] = int(time.time()) - 3600
        head = json.loads(base64.urlsafe_b64decode(header + "=="))
        return jwt.encode(head, values, self.key)


class TeamWorld:
    """Start the three programs; hand out browsers."""

    def __init__(
        self,
        tmp_path: Path,
        *,
        flow: str = "server",
        token_ttl: int = 3600,
        **config: Any,
    ):
        self.tmp_path = tmp_path
        self.clock = Clock()
        demo_client = DemoOAuthClient(
            AIRISK_CLIENT_ID, AIRISK_SECRET, (f"{DASHBOARD}/airisk/callback",)
        )
        self.demo_app = create_demo_app(
            now=DEMO_NOW,
            oauth_client=demo_client,
            clock=self.clock,
            token_ttl=token_ttl,
        )
        self.refusing = Refusing(self.demo_app.wsgi_app)
        self.demo_app.wsgi_app = self.refusing  # type: ignore[method-assign]
        self.api = DemoServer(self.demo_app).start()
        key = RSAKey.generate_key(2048, parameters={"alg": "RS256", "use": "sig"})
        key.ensure_kid()
        self.proxy = TamperingProxy(key)
        self.proxy_server = DemoServer(self.proxy).start()
        self.idp = DemoIdentityProvider(
            [
                {
                    "client_id": SSO_CLIENT_ID,
                    "client_secret": SSO_SECRET,
                    "redirect_uris": [f"{DASHBOARD}/sso/callback"],
                    "post_logout_redirect_uris": [f"{DASHBOARD}/sso/signed-out"],
                }
            ],
            workdir=tmp_path,
            jwks=KeySet([key]).as_dict(private=True),
            issuer=self.proxy_server.url,
        ).start()
        self.proxy.upstream = self.idp.url
        settings = {
            "AUTH_MODE": "team",
            "AIRISK_BASE_URL": self.api.url,
            "OIDC_ISSUER": self.idp.issuer,
            "OIDC_CLIENT_ID": SSO_CLIENT_ID,
            "OIDC_CLIENT_SECRET": SSO_SECRET,
            "REVIEWER_GROUPS": [REVIEWER_GROUP],
            "AIRISK_CLIENT_ID": AIRISK_CLIENT_ID,
            "AIRISK_CLIENT_SECRET": AIRISK_SECRET,
            "AIRISK_REDIRECT_URI": f"{DASHBOARD}/airisk/callback",
            "AIRISK_OAUTH2_FLOW": flow,
        }
        settings.update(config)
        self.app: Flask = make_app(tmp_path, **settings)

    @property
    def oauth(self) -> OAuthStore:
        """Return the demo API's OAuth2 state (codes and minted tokens)."""
        store: OAuthStore = self.demo_app.extensions["airisk_demo_oauth"]
        return store

    def minted_tokens(self) -> list[str]:
        """Return every token the demo API minted so far."""
        return list(self.oauth._tokens)

    def user_id(self, email: str) -> str:
        """Return the demo AIRisk user id with ``email``."""
        data = self.demo_app.extensions["airisk_demo"]
        return next(u["id"] for u in data.user_records if u["email"] == email)

    def browser(self) -> TeamBrowser:
        """Return a fresh browser (no cookies anywhere)."""
        return TeamBrowser(self)

    def stop(self) -> None:
        """Stop the provider, the proxy and the demo API."""
        self.idp.stop()
        self.proxy_server.stop()
        self.api.stop()


class TeamBrowser:
    """One person's browser: the dashboard's test client and a requests session."""

    def __init__(self, world: TeamWorld) -> None:
        self.world = world
        self.client: FlaskClient = world.app.test_client()
        self.http = requests.Session()
        self.http.trust_env = False
        self.pages: list[TestResponse] = []

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        """GET a dashboard path and follow redirects (through AIRisk too)."""
        return self.follow(self.client.get(path, **kwargs))

    def follow(self, response: TestResponse) -> TestResponse:
        """Follow redirects until a page that is not one."""
        for _ in range(20):
            # Read and close a streamed answer, as a browser would: its request
            # context (and ``g``) ends only then.
            response.get_data()
            response.close()
            self.pages.append(response)
            if response.status_code not in (301, 302, 303, 307):
                return response
            response = self._go(response.headers["Location"])
        raise AssertionError("redirect loop")

    def _go(self, location: str) -> TestResponse:
        if location.startswith("/") or location.startswith(DASHBOARD):
            parts = urlsplit(location)
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            return self.client.get(path)
        answer = self.http.get(location, allow_redirects=False, timeout=10)
        while answer.status_code in (302, 303):
            target = urljoin(location, answer.headers["Location"])
            if target.startswith(DASHBOARD):
                return self._go(target)
            location = target
            answer = self.http.get(location, allow_redirects=False, timeout=10)
        return TestResponse(
            [answer.content], answer.status_code, dict(answer.headers), None
        )  # type: ignore[arg-type]

    def sign_in(self, login: str, start: str = "/") -> TestResponse:
        """Sign in at the SSO provider as ``login``, starting at ``start``."""
        response = self.client.get(start)
        assert response.status_code in (302, 303), response.status_code
        for _ in range(5):
            location = response.headers["Location"]
            if not (location.startswith("/") or location.startswith(DASHBOARD)):
                break
            parts = urlsplit(location)
            response = self.client.get(f"{parts.path}?{parts.query}")
            assert response.status_code in (302, 303), response.status_code
        page = self.at_provider(location, login)
        assert page is not None
        return page

    def at_provider(
        self, location: str, login: str, *, come_back: bool = True
    ) -> TestResponse | None:
        """Fill the provider's sign-in form; come back to the dashboard.

        With ``come_back=False`` stop before the callback (its address is in
        :attr:`callback`).
        """
        form = self.http.get(location, timeout=10)
        assert form.status_code == 200, form.text
        action = re.search(r'action="([^"]+)"', form.text)
        assert action is not None, form.text
        answer = self.http.post(
            urljoin(form.url, action.group(1)),
            data={"login": login, "password": PASSWORD},
            allow_redirects=False,
            timeout=10,
        )
        while answer.status_code in (302, 303):
            target = urljoin(form.url, answer.headers["Location"])
            if target.startswith(DASHBOARD):
                self.callback = target
                return self.follow(self._go(target)) if come_back else None
            answer = self.http.get(target, allow_redirects=False, timeout=10)
        raise AssertionError(f"provider did not send us back: {answer.status_code}")


def iterate(world: TeamWorld) -> Iterator[TeamWorld]:
    """Yield ``world`` and stop it afterwards (for fixtures)."""
    try:
        yield world
    finally:
        world.stop()
