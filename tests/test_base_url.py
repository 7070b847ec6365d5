"""A wrong AIRISK_BASE_URL: refused at sign-in, named on pages, not ready.

AIRisk answers 404 on its list endpoints only when the path is wrong (the
base URL, or a tenant that answers elsewhere), so the dashboard says which
setting to fix instead of "Conversation not found".
"""

from __future__ import annotations

from pathlib import Path

import responses
from flask.testing import FlaskClient
from responses import matchers
from support import ALICE, BASE, enter_token, make_app, page

from webapp.demo_api.server import DemoServer

LIST_URL = BASE + "/api/Chat/GetConversations"
AGENTS_URL = BASE + "/api/Chat/ListAgents"


def test_sign_in_refuses_a_base_url_whose_api_is_not_found(
    tmp_path: Path, demo_api: DemoServer
) -> None:
    # A real server on loopback, asked under a wrong base path.
    app = make_app(tmp_path, AIRISK_BASE_URL=demo_api.url + "/tenant")
    client = app.test_client()
    response = enter_token(client, ALICE)
    assert response.status_code == 502
    doc = page(response)
    assert "AIRISK_BASE_URL" in doc.text
    assert "rejected" not in doc.text and "Conversation not found" not in doc.text
    assert doc.find_all("input", name="token"), "the token page, shown again"
    # Nothing was kept: the list still asks for a token.
    after = client.get("/conversations")
    assert after.status_code in (302, 303)
    assert after.headers["Location"].startswith("/token")


def test_readiness_fails_against_a_base_url_whose_api_is_not_found(
    tmp_path: Path, demo_api: DemoServer
) -> None:
    wrong = make_app(tmp_path / "wrong", AIRISK_BASE_URL=demo_api.url + "/tenant")
    ready = wrong.test_client().get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json() == {"status": "unavailable"}
    right = make_app(tmp_path / "right", AIRISK_BASE_URL=demo_api.url)
    assert right.test_client().get("/readyz").status_code == 200


def _signed_in(client: FlaskClient, upstream: responses.RequestsMock) -> None:
    check = upstream.get(
        LIST_URL,
        json=[],
        match=[
            matchers.query_param_matcher(
                {"results": "1", "skip": "0", "metadatasearch": ""}
            )
        ],
    )
    enter_token(client, "tok-0123456789abcdef")
    upstream.remove(check)


def test_pages_that_meet_a_404_api_name_the_setting(
    client: FlaskClient, upstream: responses.RequestsMock
) -> None:
    _signed_in(client, upstream)
    # The tenant moved after sign-in: every path of the API now answers 404.
    upstream.get(AGENTS_URL, status=404)
    upstream.get(LIST_URL, status=404)
    upstream.get(BASE + "/api/Chat/GetConversation/c1", status=404)
    for path in ("/conversations", "/conversations/c1", "/insights"):
        response = client.get(path)
        assert response.status_code == 502, path
        text = page(response).text
        assert "AIRISK_BASE_URL" in text, path
        assert "Conversation not found" not in text, path
    json_error = client.get(
        "/conversations", headers={"Accept": "application/json"}
    ).get_json()
    assert "AIRISK_BASE_URL" in json_error["error"]["message"]


def test_a_session_that_meets_a_moved_api_is_told_over_http(
    tmp_path: Path, demo_api: DemoServer
) -> None:
    # Signed in while the address was right; the same store and secret serve
    # an instance configured with a wrong base path (a redeploy gone wrong).
    right = make_app(tmp_path, AIRISK_BASE_URL=demo_api.url).test_client()
    assert enter_token(right, ALICE).status_code in (302, 303)
    cookie = right.get_cookie("session")
    assert cookie is not None
    wrong = make_app(tmp_path, AIRISK_BASE_URL=demo_api.url + "/tenant").test_client()
    wrong.set_cookie("session", cookie.value)
    dataset = demo_api.app.extensions["airisk_demo"]  # type: ignore[attr-defined]
    cid = dataset.summaries[dataset.user_id_for(ALICE)][0]["id"]
    for path in ("/conversations", f"/conversations/{cid}", "/conversations?q=x"):
        response = wrong.get(path)
        assert response.status_code == 502, path
        text = page(response).text
        assert "AIRISK_BASE_URL" in text and "Conversation not found" not in text
