"""The demo AIRisk API's OAuth2 endpoints: authorize, exchange, minted tokens.

As documented by the vendor (see docs/airisk-api.md, "OAuth2"): one registered
API client (id, secret, allowed redirect URIs); ``GET /api/oauth2`` answers 302
to ``redirect_uri?code=..[&state=..]``; ``POST /api/oauth2/Token`` trades the
code for ``{"access_token", "expiration"}``. Without ``userid`` the token is a
generic (application) token, with it a user token acting as that user.

Where the vendor is silent, the demo decides (and docs/airisk-api.md says so):

- Authorize errors never redirect: an unknown ``client_id``, a ``redirect_uri``
  that is not registered exactly, or an unknown ``userid`` answer 400 in plain
  text (``Invalid client_id``, ``Invalid redirect_uri``, ``Invalid userid``).
- Exchange: an unknown client or a wrong secret answers 401 ProblemDetails and
  leaves the code alone; otherwise the code is spent by the first attempt, and
  a code that is unknown, spent, older than :data:`CODE_TTL` seconds or asked
  for with another ``redirect_uri`` or ``userid`` answers 400 ``Invalid Code``.
- Minted tokens answer 401 from their ``expiration`` on.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import Blueprint, Response, current_app, request

from .conversations import zulu_iso
from .data import Dataset, TokenGrant
from .views import json_response, problem

bp = Blueprint("demo_oauth2", __name__, url_prefix="/api")

#: Seconds an authorization code stays valid ("short-lived" in the docs).
CODE_TTL = 60
#: Seconds a minted token stays valid unless the app says otherwise.
TOKEN_TTL = 3600
#: Most unspent codes and live tokens kept; the oldest go first past it.
_MAX_ENTRIES = 10_000

Clock = Callable[[], float]


@dataclass(frozen=True)
class DemoOAuthClient:
    """The API client an AIRisk admin registered: id, secret, redirect URIs."""

    client_id: str
    client_secret: str = field(repr=False)
    redirect_uris: tuple[str, ...]

    @classmethod
    def from_setting(
        cls, client_id: str, client_secret: str, redirect_uris: str
    ) -> DemoOAuthClient:
        """Build a client from a comma-separated list of redirect URIs."""
        uris = tuple(uri.strip() for uri in redirect_uris.split(",") if uri.strip())
        return cls(client_id, client_secret, uris)


#: What ``airisk-viewer demo --team`` and the tests register by default.
DEFAULT_CLIENT = DemoOAuthClient.from_setting(
    "airisk-viewer-demo",
    "demo-client-secret-not-for-production",
    "http://127.0.0.1:5000/airisk/callback,http://localhost:5000/airisk/callback",
)


@dataclass(frozen=True)
class _Code:
    client_id: str
    redirect_uri: str
    user_id: str | None
    expires: float


class OAuthStore:
    """Unspent codes and minted tokens of one demo app, safe across threads."""

    def __init__(self, client: DemoOAuthClient, token_ttl: int, clock: Clock) -> None:
        self.client = client
        self.token_ttl = token_ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._codes: dict[str, _Code] = {}
        self._tokens: dict[str, tuple[TokenGrant, float]] = {}

    def issue_code(self, redirect_uri: str, user_id: str | None) -> str:
        """Return a new single-use code for the registered client."""
        code = secrets.token_urlsafe(32)
        entry = _Code(
            self.client.client_id, redirect_uri, user_id, self.clock() + CODE_TTL
        )
        with self._lock:
            _bounded_put(self._codes, code, entry)
        return code

    def spend_code(self, code: str) -> _Code | None:
        """Remove ``code`` and return it if it had not expired."""
        with self._lock:
            entry = self._codes.pop(code, None)
        if entry is None or self.clock() >= entry.expires:
            return None
        return entry

    def mint(self, user_id: str | None) -> tuple[str, float]:
        """Return a new token acting as ``user_id`` (None: generic) and its end."""
        token = "oauth-" + secrets.token_urlsafe(32)
        expires = self.clock() + self.token_ttl
        with self._lock:
            _bounded_put(self._tokens, token, (TokenGrant(token, user_id), expires))
        return token, expires

    def grant_for(self, token: str) -> TokenGrant | None:
        """Return the grant of a minted token that has not expired."""
        with self._lock:
            found = self._tokens.get(token)
        if found is None or self.clock() >= found[1]:
            return None
        return found[0]


def _bounded_put(entries: dict[str, Any], key: str, value: Any) -> None:
    # dicts keep insertion order: the first keys are the oldest.
    while len(entries) >= _MAX_ENTRIES:
        del entries[next(iter(entries))]
    entries[key] = value


def store() -> OAuthStore:
    """Return the OAuth2 state of the running demo app."""
    found: OAuthStore = current_app.extensions["airisk_demo_oauth"]
    return found


def _plain(status: int, text: str) -> Response:
    return Response(text, status=status, content_type="text/plain; charset=utf-8")


def _known_user(user_id: str) -> bool:
    data: Dataset = current_app.extensions["airisk_demo"]
    return any(user["id"] == user_id for user in data.user_records)


def _with_query(uri: str, extra: Mapping[str, str]) -> str:
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(extra.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


@bp.get("/oauth2", provide_automatic_options=False)
def authorize() -> Response:
    """Answer 302 to the registered redirect URI with a fresh code."""
    oauth = store()
    args = request.args
    if args.get("client_id", "") != oauth.client.client_id:
        return _plain(400, "Invalid client_id")
    redirect_uri = args.get("redirect_uri", "")
    if redirect_uri not in oauth.client.redirect_uris:
        # Never redirect to an address the admin did not register.
        return _plain(400, "Invalid redirect_uri")
    user_id = args.get("userid") or None
    if user_id is not None and not _known_user(user_id):
        return _plain(400, "Invalid userid")
    params = {"code": oauth.issue_code(redirect_uri, user_id)}
    if "state" in args:
        params["state"] = args["state"]
    response = Response(status=302)
    response.headers["Location"] = _with_query(redirect_uri, params)
    response.headers["Cache-Control"] = "no-store"
    return response


def _token_fields() -> Mapping[str, Any]:
    if request.is_json:
        body = request.get_json(silent=True)
        return body if isinstance(body, dict) else {}
    return request.form


@bp.post("/oauth2/Token", provide_automatic_options=False)
def token() -> Response:
    """Trade a code for an access token and its expiration."""
    oauth = store()
    fields = _token_fields()
    client_ok = str(fields.get("client_id", "")) == oauth.client.client_id
    secret = str(fields.get("client_secret", ""))
    if not (client_ok and secrets.compare_digest(secret, oauth.client.client_secret)):
        return problem(401, "Unauthorized")
    code = oauth.spend_code(str(fields.get("code", "")))
    user_id = str(fields.get("userid", "")) or None
    if (
        code is None
        or code.redirect_uri != str(fields.get("redirect_uri", ""))
        or code.user_id != user_id
    ):
        return _plain(400, "Invalid Code")
    access_token, expires = oauth.mint(code.user_id)
    response = json_response(
        {
            "access_token": access_token,
            "expiration": zulu_iso(datetime.fromtimestamp(expires, UTC)),
        }
    )
    response.headers["Cache-Control"] = "no-store"
    return response
