"""The demo OpenID Connect provider (oidc-provider on Node.js) driven over HTTP."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests

from webapp.demo_api import idp
from webapp.demo_api.idp import DemoIdentityProvider

pytestmark = pytest.mark.slow

CLIENT_ID = "dashboard"
CLIENT_SECRET = "dashboard-secret-0123456789"
REDIRECT = "http://127.0.0.1:9/auth/callback"
CLIENT = {
    "client_id": CLIENT_ID,
    "client_secret": CLIENT_SECRET,
    "redirect_uris": [REDIRECT],
    "post_logout_redirect_uris": ["http://127.0.0.1:9/"],
}


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("oidc")
    with DemoIdentityProvider([CLIENT], workdir=workdir) as running:
        yield running.issuer


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_of(jwt: str) -> dict[str, Any]:
    payload = jwt.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=="))
    return decoded


def start_sign_in(http: requests.Session, issuer: str) -> tuple[str, str, str]:
    """Ask for a code; return the login form's URL, the state and the verifier."""
    meta = http.get(issuer + "/.well-known/openid-configuration").json()
    verifier = secrets.token_urlsafe(48)
    state = secrets.token_urlsafe(16)
    response = http.get(
        meta["authorization_endpoint"],
        params={
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT,
            "response_type": "code",
            "scope": "openid email profile groups",
            "state": state,
            "nonce": "n-1",
            "code_challenge": b64url(hashlib.sha256(verifier.encode()).digest()),
            "code_challenge_method": "S256",
        },
        allow_redirects=False,
    )
    assert response.status_code in (302, 303)
    return urljoin(issuer, response.headers["Location"]), state, verifier


def code_for(
    http: requests.Session, issuer: str, login: str, password: str = idp.PASSWORD
) -> tuple[str, str]:
    """Sign in as ``login``; return the code sent to the client and the verifier."""
    location, state, verifier = start_sign_in(http, issuer)
    if location.startswith(REDIRECT):
        # Signed in at the provider already: no form, straight back.
        return _code(location, state, issuer), verifier
    form = http.get(location)
    assert form.status_code == 200
    action = re.search(r'action="([^"]+)"', form.text)
    assert action is not None
    response = http.post(
        urljoin(issuer, action.group(1)),
        data={"login": login, "password": password},
        allow_redirects=False,
    )
    # Follow the provider's own redirects until it sends us to the client.
    while response.status_code in (302, 303):
        location = urljoin(issuer, response.headers["Location"])
        if location.startswith(REDIRECT):
            break
        response = http.get(location, allow_redirects=False)
    return _code(location, state, issuer), verifier


def _code(location: str, state: str, issuer: str) -> str:
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == [state]
    assert query["iss"] == [issuer]
    return query["code"][0]


def redeem(http: requests.Session, issuer: str, code: str, verifier: str) -> Any:
    return http.post(
        issuer + "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
        auth=(CLIENT_ID, CLIENT_SECRET),
    )


def sign_in(http: requests.Session, issuer: str, login: str) -> dict[str, Any]:
    """Sign in as ``login`` and return the token endpoint's answer."""
    token = redeem(http, issuer, *code_for(http, issuer, login))
    assert token.status_code == 200, token.text
    body: dict[str, Any] = token.json()
    return body


def test_discovery_names_the_endpoints_the_dashboard_needs(provider: str) -> None:
    meta = requests.get(provider + "/.well-known/openid-configuration").json()
    assert meta["issuer"] == provider
    assert provider.startswith("http://127.0.0.1:")
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        assert meta[key].startswith(provider)
    assert meta["end_session_endpoint"].startswith(provider)
    assert {"openid", "email", "profile", "groups"} <= set(meta["scopes_supported"])
    keys = requests.get(meta["jwks_uri"]).json()["keys"]
    assert keys and all("d" not in key for key in keys)


@pytest.mark.parametrize(
    ("login", "email", "verified", "reviewer"),
    [
        ("rita", "rita.reyes@northwind.example", True, True),
        ("sam", "sam.patel@northwind.example", True, True),
        ("alice", "Alice.Martin@Northwind.example", True, False),
        ("bob", "bob.chen@northwind.example", True, False),
        ("erin", "erin.novak@northwind.example", True, False),
        ("victor", "carol.diaz@northwind.example", False, False),
    ],
)
def test_each_demo_person_signs_in_with_their_claims(
    provider: str, login: str, email: str, verified: bool, reviewer: bool
) -> None:
    with requests.Session() as http:
        token = sign_in(http, provider, login)
    claims = claims_of(token["id_token"])
    assert claims["iss"] == provider and claims["aud"] == CLIENT_ID
    assert claims["sub"] == login and claims["nonce"] == "n-1"
    assert claims["email"] == email and claims["email_verified"] is verified
    assert claims["name"]
    assert (idp.REVIEWER_GROUP in claims["groups"]) is reviewer
    assert "refresh_token" not in token


def test_a_wrong_password_shows_the_form_again(provider: str) -> None:
    with requests.Session() as http:
        form_url, _, _ = start_sign_in(http, provider)
        form = http.get(form_url, allow_redirects=False)
        action = re.search(r'action="([^"]+)"', form.text)
        assert action is not None
        response = http.post(
            urljoin(provider, action.group(1)),
            data={"login": "rita", "password": "guess"},
            allow_redirects=False,
        )
    assert response.status_code == 401
    assert "Unknown user name or wrong password." in response.text


def test_a_code_needs_the_pkce_verifier_and_works_once(provider: str) -> None:
    with requests.Session() as http:
        code, verifier = code_for(http, provider, "bob")
        wrong = redeem(http, provider, code, secrets.token_urlsafe(48))
        assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
        code, verifier = code_for(http, provider, "bob")
        assert redeem(http, provider, code, verifier).status_code == 200
        again = redeem(http, provider, code, verifier)
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_a_missing_install_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setattr(idp, "OIDC_DIR", tmp_path)
    with pytest.raises(idp.ProviderUnavailable, match="make oidc-deps"):
        DemoIdentityProvider([CLIENT], workdir=tmp_path).start()
