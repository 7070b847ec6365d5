"""Team mode end to end: the real OIDC provider, the demo AIRisk API, no mocks."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
from support import Page, csrf_token, make_app
from support.team_world import (
    AIRISK_SECRET,
    DASHBOARD,
    SSO_CLIENT_ID,
    SSO_SECRET,
    TeamBrowser,
    TeamWorld,
    iterate,
)
from werkzeug.test import TestResponse

pytestmark = pytest.mark.slow

ALICE = "alice.martin@northwind.example"
BOB = "bob.chen@northwind.example"
DETAIL = re.compile(r'href="(/u/[^"/]+/conversations/[A-Za-z0-9_-]+)[?"]')


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TeamWorld]:
    yield from iterate(TeamWorld(tmp_path_factory.mktemp("team")))


@pytest.fixture(autouse=True)
def _reset(world: TeamWorld) -> None:
    world.proxy.mode = None
    world.refusing.on = False
    world.refusing.allow = None
    world.refusing.authorize = None
    world.refusing.users = False
    world.clock.offset = 0
    world.app.config.update(
        AIRISK_CLIENT_SECRET=AIRISK_SECRET,
        AIRISK_REDIRECT_URI=f"{DASHBOARD}/airisk/callback",
    )


def path_of(response: TestResponse) -> str:
    return response.request.path


def text(response: TestResponse) -> str:
    return Page(response.get_data(as_text=True)).text


def first_conversation(page: TestResponse) -> str:
    found = DETAIL.search(page.get_data(as_text=True))
    assert found, "no conversation link on the list"
    return found.group(1)


def test_a_member_signs_in_and_sees_their_own_history(world: TeamWorld) -> None:
    browser = world.browser()
    page = browser.sign_in("bob")
    bob = world.user_id(BOB)
    assert page.status_code == 200
    assert path_of(page) == f"/u/{bob}/conversations"
    shown = text(page)
    assert "Signed in as Bob Chen (bob.chen@northwind.example)" in shown
    assert "Viewing:" not in shown  # a member sees only their own
    # Old token-mode addresses go to the member's own user.
    again = browser.get("/conversations?q=security")
    assert path_of(again) == f"/u/{bob}/conversations"
    assert again.request.args["q"] == "security"


def test_a_team_export_names_the_sso_person_who_exported_it(
    world: TeamWorld,
) -> None:
    browser = world.browser()
    page = browser.sign_in("bob")
    bob = world.user_id(BOB)
    exported = browser.get(f"{first_conversation(page)}/export.md")
    assert exported.status_code == 200
    body = exported.get_data(as_text=True)
    assert "- Exported by: `Bob Chen <bob.chen@northwind.example>`" in body
    assert f"- User ID (AIRisk): `{bob}`" in body
    assert "by=Bob%20Chen%20%3Cbob.chen%40northwind.example%3E;" in body


def test_a_members_email_matches_in_any_case(world: TeamWorld) -> None:
    # The provider says "Alice.Martin@Northwind.example"; AIRisk lower case.
    page = world.browser().sign_in("alice")
    assert path_of(page) == f"/u/{world.user_id(ALICE)}/conversations"


def test_a_reviewer_picks_a_user_from_a_searchable_list(world: TeamWorld) -> None:
    browser = world.browser()
    picker = browser.sign_in("rita")
    assert path_of(picker) == "/people"
    page = Page(picker.get_data(as_text=True))
    assert "Signed in as Rita Reyes" in page.text
    names = [
        a.get("href") for a in page.find_all("a") if "/u/" in (a.get("href") or "")
    ]
    assert len(names) == 6
    # The hostile user's name is text, not markup.
    assert "<img src=x onerror=alert(1)>Quinn" in page.text
    assert "<img src=x" not in picker.get_data(as_text=True)
    found = browser.get("/people?q=CHEN")
    assert "1 of 6 people match" in text(found)
    bob = world.user_id(BOB)
    listed = browser.get(f"/u/{bob}/conversations")
    assert listed.status_code == 200
    shown = text(listed)
    assert "Viewing: Bob Chen Switch" in shown
    # Links on the page stay on Bob.
    assert first_conversation(listed).startswith(f"/u/{bob}/")
    # The reviewer's next visit to a plain address goes back to Bob.
    assert path_of(browser.get("/insights")) == f"/u/{bob}/insights"


def test_a_shared_link_works_for_a_reviewer_and_not_another_member(
    world: TeamWorld,
) -> None:
    alice = world.browser()
    listed = alice.sign_in("alice")
    own = alice.get(first_conversation(listed))
    assert own.status_code == 200
    # The "Link" of a message, as Alice copies it: per-user, with its anchor.
    permalink = re.search(
        r'<a class="permalink" href="([^"]+)"', own.get_data(as_text=True)
    )
    assert permalink is not None
    shared = permalink.group(1).replace("&amp;", "&")
    assert shared.startswith(first_conversation(listed) + "?at=")
    assert "#m-" in shared
    link = shared.split("#")[0] + "&highlight=policy"
    title = Page(own.get_data(as_text=True)).text

    reviewer = world.browser()
    reviewer.sign_in("sam")
    opened = reviewer.get(link)
    assert opened.status_code == 200
    assert opened.request.full_path == link  # at= and highlight= kept
    assert "Viewing: Alice Martin" in text(opened)
    heading = re.search(r"<h1[^>]*>(.*?)</h1>", own.get_data(as_text=True), re.S)
    assert heading and heading.group(1).strip() in opened.get_data(as_text=True)

    bob = world.browser()
    bob.sign_in("bob")
    refused = bob.get(link)
    assert refused.status_code == 403
    shown = text(refused)
    assert "This is not your conversation history" in shown
    assert "signed in as Bob Chen (bob.chen@northwind.example), a member" in shown
    # No data: nothing of the conversation, not even whose it is.
    assert heading.group(1).strip() not in refused.get_data(as_text=True)
    assert "Alice" not in shown
    assert title  # (the owner's page had content to leak)
    for path in ("/insights", "/insights.json", "/conversations/export.csv"):
        other = bob.client.get(urlsplit(link).path.split("/conversations")[0] + path)
        assert other.status_code == 403


def test_a_person_without_an_airisk_account_is_told_so(world: TeamWorld) -> None:
    page = world.browser().sign_in("erin")
    assert page.status_code == 403
    shown = text(page)
    assert "No AIRisk account for you" in shown
    assert "erin.novak@northwind.example" in shown


def test_an_unverified_email_matches_no_one(world: TeamWorld) -> None:
    # Victor's provider e-mail is Carol's, but not verified: never Carol.
    browser = world.browser()
    page = browser.sign_in("victor")
    assert page.status_code == 403
    assert "is verified" in text(page)
    carol = world.user_id("carol.diaz@northwind.example")
    assert browser.client.get(f"/u/{carol}/conversations").status_code in (302, 303)


def test_sso_sign_out_ends_the_session_everywhere(world: TeamWorld) -> None:
    browser = world.browser()
    page = browser.sign_in("bob")
    bob_list = path_of(page)
    token = csrf_token(browser.client, bob_list)
    response = browser.client.post("/logout", data={"csrf_token": token})
    end = urlsplit(response.headers["Location"])
    assert f"{end.scheme}://{end.netloc}" == world.idp.issuer
    query = parse_qs(end.query)
    assert query["client_id"] == [SSO_CLIENT_ID]
    assert query["post_logout_redirect_uri"] == [f"{DASHBOARD}/sso/signed-out"]
    assert "id_token_hint" not in query
    # The provider asks to confirm; confirming brings the browser back.
    confirm = browser.http.get(response.headers["Location"], timeout=10)
    form = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', confirm.text))
    action = re.search(r'action="([^"]+)"', confirm.text)
    assert action is not None
    answer = browser.http.post(
        urljoin(confirm.url, action.group(1)),
        data={**form, "logout": "yes"},
        allow_redirects=False,
        timeout=10,
    )
    back = answer.headers["Location"]
    assert back.startswith(f"{DASHBOARD}/sso/signed-out")
    assert "You are signed out" in text(browser.get(urlsplit(back).path))
    # The dashboard session is gone, and so is the one at the provider.
    again = browser.client.get(bob_list)
    assert urlsplit(again.headers["Location"]).path == "/sso/login"
    login = browser.client.get(again.headers["Location"])
    at_provider = browser.http.get(login.headers["Location"], allow_redirects=False)
    assert "/interaction/" in at_provider.headers["Location"]


def test_a_foreign_state_is_refused(world: TeamWorld) -> None:
    browser = world.browser()
    start = browser.client.get("/sso/login")
    assert start.status_code in (302, 303)
    page = browser.client.get("/sso/callback?code=made-up&state=not-mine")
    assert page.status_code == 400
    assert "Start again" in text(page)
    assert browser.client.get("/conversations").status_code in (302, 303)


def test_made_up_callbacks_write_nothing_to_the_cache(world: TeamWorld) -> None:
    # Anonymous visitors store nothing server-side (issue 17 items 2 and 4):
    # a callback with this browser's own state and a made-up code is refused
    # by the provider and must not leave a "state used" entry in the cache
    # (a loop of /sso/login and such callbacks filled it, evicting others).
    cache = world.app.extensions["airisk"].cache
    browser = world.browser()
    for _ in range(2):
        start = browser.client.get("/sso/login")
        (state,) = parse_qs(urlsplit(start.headers["Location"]).query)["state"]
        before = len(cache._items)
        refused = browser.client.get(f"/sso/callback?code=made-up&state={state}")
        assert refused.status_code == 400
        assert len(cache._items) == before, "an anonymous callback wrote the cache"
    # A real sign-in still spends its state: its replay is refused.
    browser.sign_in("bob")
    callback = urlsplit(browser.callback)
    replay = world.browser().client.get(f"{callback.path}?{callback.query}")
    assert replay.status_code == 400


def test_a_replayed_callback_is_refused(world: TeamWorld) -> None:
    browser = world.browser()
    browser.sign_in("bob")
    callback = urlsplit(browser.callback)
    # The same browser: its session no longer holds the state.
    again = browser.client.get(f"{callback.path}?{callback.query}")
    assert again.status_code == 400
    # A copy of the browser from before the callback (the old cookie): the
    # state was spent server-side.
    thief = world.browser()
    start = thief.client.get("/sso/login")
    cookie = thief.client.get_cookie("session")
    assert cookie is not None
    location = start.headers["Location"]
    thief.at_provider(location, "bob")
    replay = world.browser()
    replay.client.set_cookie("session", cookie.value, domain="localhost")
    callback = urlsplit(thief.callback)
    page = replay.client.get(f"{callback.path}?{callback.query}")
    assert page.status_code == 400
    assert "already used" in text(page)


@pytest.mark.parametrize(
    "mode", ["bad_signature", "wrong_audience", "wrong_issuer", "expired"]
)
def test_a_doubtful_id_token_is_refused(
    world: TeamWorld, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    world.proxy.mode = mode
    browser = world.browser()
    with caplog.at_level(logging.INFO):
        page = browser.sign_in("rita")
    assert page.status_code == 403
    assert "cannot trust" in text(page)
    assert "SSO ID token refused" in caplog.text
    # Not signed in.
    assert browser.client.get("/people").status_code in (302, 303)


def test_an_expired_token_is_reminted_transparently(world: TeamWorld) -> None:
    browser = world.browser()
    page = browser.sign_in("bob")
    link = first_conversation(page) + "?highlight=security"
    minted = len(world.minted_tokens())
    world.clock.offset = 3700  # AIRisk's clock: every token so far expired
    opened = browser.get(link)
    assert opened.status_code == 200
    assert opened.request.full_path.rstrip("?") == link
    assert len(world.minted_tokens()) > minted


def test_a_second_401_is_an_error_page_not_a_loop(world: TeamWorld) -> None:
    browser = world.browser()
    page = browser.sign_in("bob")
    world.refusing.on = True
    start = len(browser.pages)
    refused = browser.get(path_of(page) + "?page=2")
    assert refused.status_code == 502
    assert "AIRisk refuses the dashboard's access" in text(refused)
    # A 401, a redirect to the same address with a fresh token, a second
    # 401 and the page: two answers in all.
    assert [p.status_code for p in browser.pages[start:]] == [303, 502]


def _forget_cached_answers(world: TeamWorld) -> None:
    # What the dashboard cached (the user list for five minutes) is gone.
    world.app.extensions["airisk"].cache.inner._items.clear()


def test_a_restarted_airisk_is_transparent_to_a_reviewer(world: TeamWorld) -> None:
    browser = world.browser()
    browser.sign_in("rita")
    bob = f"/u/{world.user_id(BOB)}/conversations"
    assert browser.get(bob).status_code == 200
    # AIRisk forgot every token it minted (a restart, a key rotation), and
    # the user list the dashboard kept has expired: the generic token that
    # lists users is refused too, and must be the one replaced.
    world.oauth._tokens.clear()
    _forget_cached_answers(world)
    page = browser.get(bob)
    assert page.status_code == 200
    assert "Viewing: Bob Chen" in text(page)


def test_a_user_list_that_keeps_refusing_is_an_error_page(world: TeamWorld) -> None:
    browser = world.browser()
    browser.sign_in("rita")
    bob = f"/u/{world.user_id(BOB)}/conversations"
    assert browser.get(bob).status_code == 200
    world.refusing.users = True
    _forget_cached_answers(world)
    start = len(browser.pages)
    page = browser.get(bob)
    assert page.status_code == 502
    assert "AIRisk refuses the dashboard's access" in text(page)
    assert [p.status_code for p in browser.pages[start:]] == [303, 502]


def test_an_old_address_keeps_its_query_as_sent(world: TeamWorld) -> None:
    browser = world.browser()
    browser.sign_in("bob")
    own = f"/u/{world.user_id(BOB)}/conversations"
    for query in (
        "tag=a&tag=b",
        "_method=POST",
        "endpoint=x",
        "_external=1&_scheme=javascript",
        "_anchor=x",
    ):
        moved = browser.client.get(f"/conversations?{query}")
        assert moved.status_code == 303, query
        assert moved.headers["Location"] == f"{own}?{query}"


def test_no_secret_or_token_reaches_a_page_a_cookie_or_a_log(
    world: TeamWorld, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        member = world.browser()
        listed = member.sign_in("alice")
        conversation = first_conversation(listed)
        alice_id = conversation.split("/")[2]
        member.get(conversation)
        member.get(conversation, headers={"Accept": "application/json"})
        member.get(f"/u/{alice_id}/insights")
        member.get(f"/u/{alice_id}/insights.json")
        member.get(f"/u/{alice_id}/conversations/export.json")
        reviewer = world.browser()
        reviewer.sign_in("rita")
        reviewer.get("/people")
        reviewer.get(conversation)
    secrets = [AIRISK_SECRET, SSO_SECRET, *world.minted_tokens()]
    assert len(secrets) > 4
    for browser in (member, reviewer):
        for page in browser.pages:
            body = page.get_data(as_text=True)
            headers = str(page.headers)
            for secret in secrets:
                assert secret not in body and secret not in headers
        for cookie in browser.client._cookies.values():
            assert all(secret not in cookie.value for secret in secrets)
    for secret in secrets:
        assert secret not in caplog.text
    files = " ".join(p.read_text(errors="replace") for p in _session_files(world))
    for secret in secrets:
        assert secret not in files


def _session_files(world: TeamWorld) -> list[Path]:
    folder = Path(world.app.config["SESSION_DIR"])
    return [p for p in folder.rglob("*") if p.is_file()]


def test_browser_flow_mints_through_the_callback(tmp_path: Path) -> None:
    world = TeamWorld(tmp_path, flow="browser")
    try:
        browser = world.browser()
        page = browser.sign_in("bob")
        assert page.status_code == 200
        assert path_of(page) == f"/u/{world.user_id(BOB)}/conversations"
        callbacks = [p for p in browser.pages if p.request.path == "/airisk/callback"]
        assert len(callbacks) == 2  # the generic token, then Bob's
        replay = callbacks[0].request.full_path
        refused = browser.client.get(replay)
        assert refused.status_code == 400
        assert "not for this session" in text(refused)
        _code_reuse_and_expiry(world, browser)
    finally:
        world.stop()


def _code_reuse_and_expiry(world: TeamWorld, browser: TeamBrowser) -> None:
    """A code used twice, and a code past its minute, are refused pages."""
    reviewer = world.browser()
    reviewer.sign_in("sam")
    carol = world.user_id("carol.diaz@northwind.example")
    # Stop at AIRisk's redirect: take the code, deliver it late.
    start = reviewer.client.get(f"/u/{carol}/conversations")
    at_airisk = reviewer.http.get(start.headers["Location"], allow_redirects=False)
    callback = urlsplit(at_airisk.headers["Location"])
    world.clock.offset = 61
    late = reviewer.client.get(f"{callback.path}?{callback.query}")
    assert late.status_code == 502
    assert "AIRisk refused the sign-in code" in text(late)
    world.clock.offset = 0
    # A fresh state with a code that was already spent.
    spent = parse_qs(callback.query)["code"][0]
    again = reviewer.client.get(f"/u/{carol}/conversations")
    fresh = reviewer.http.get(again.headers["Location"], allow_redirects=False)
    state = parse_qs(urlsplit(fresh.headers["Location"]).query)["state"][0]
    reused = reviewer.client.get(f"/airisk/callback?code={spent}&state={state}")
    assert reused.status_code == 502
    assert "AIRisk refused the sign-in code" in text(reused)


def test_a_token_near_its_expiration_is_replaced_before_it(tmp_path: Path) -> None:
    # Tokens live 30 s; the dashboard replaces them 60 s before: every page
    # mints afresh, and AIRisk never sees an expired token (no 401).
    world = TeamWorld(tmp_path, token_ttl=30, AIRISK_TOKEN_MARGIN=60)
    try:
        browser = world.browser()
        page = browser.sign_in("bob")
        minted = len(world.minted_tokens())
        start = len(browser.pages)
        again = browser.get(path_of(page) + "?refresh=1")
        assert again.status_code == 200
        # Straight to the page: no 401, no redirect to re-mint after one.
        assert [p.status_code for p in browser.pages[start:]] == [200]
        assert len(world.minted_tokens()) == minted + 1
    finally:
        world.stop()


@pytest.mark.parametrize(("ttl", "skew"), [(30, 0), (3600, -3700)])
def test_a_short_lived_token_in_the_browser_flow_is_no_redirect_loop(
    tmp_path: Path, ttl: int, skew: int
) -> None:
    # Tokens live 30 s, or AIRisk's clock is an hour behind (its expirations
    # look past); the dashboard replaces tokens 60 s before: the page a
    # browser fetched them for still uses them, instead of sending the
    # browser to AIRisk again, and again.
    world = TeamWorld(tmp_path, flow="browser", token_ttl=ttl, AIRISK_TOKEN_MARGIN=60)
    world.clock.offset = skew
    try:
        member = world.browser().sign_in("bob")
        assert member.status_code == 200
        reviewer = world.browser()
        reviewer.sign_in("rita")
        viewed = reviewer.get(f"/u/{world.user_id(BOB)}/conversations")
        assert viewed.status_code == 200 and "Viewing: Bob Chen" in text(viewed)
    finally:
        world.stop()


def test_a_full_session_store_is_a_page_not_a_crash(tmp_path: Path) -> None:
    world = TeamWorld(tmp_path, SESSION_MAX_SIGNED_IN=1)
    try:
        assert world.browser().sign_in("bob").status_code == 200
        page = world.browser().sign_in("alice")
        assert page.status_code == 503
        assert "Too many people are signed in" in text(page)
    finally:
        world.stop()


@pytest.mark.parametrize(
    ("break_it", "title", "logged"),
    [
        (
            {"AIRISK_CLIENT_SECRET": "not-the-secret"},
            "AIRisk refused the dashboard's API client",
            "oauth2/Token: HTTP 401",
        ),
        (
            {"AIRISK_REDIRECT_URI": f"{DASHBOARD}/elsewhere"},
            "AIRisk refused the dashboard's API client",
            "HTTP 400 (Invalid redirect_uri)",
        ),
        ({"authorize": "html"}, "AIRisk did not issue an access token", "HTTP 200"),
        (
            {"authorize": "error"},
            "AIRisk refused to authorise the dashboard",
            "error=unrecognised",
        ),
    ],
)
def test_an_oauth2_failure_is_a_clear_page_and_log_line(
    world: TeamWorld,
    caplog: pytest.LogCaptureFixture,
    break_it: dict[str, str],
    title: str,
    logged: str,
) -> None:
    world.refusing.authorize = break_it.pop("authorize", None)
    world.app.config.update(break_it)
    with caplog.at_level(logging.INFO):
        page = world.browser().sign_in("bob")
    assert page.status_code == 502
    assert title in text(page)
    body = page.get_data(as_text=True)
    assert "<script>" not in body and "Sign in to AIRisk" not in body
    assert logged in caplog.text
    assert "not-the-secret" not in caplog.text and AIRISK_SECRET not in caplog.text


def test_a_401_in_the_middle_of_a_search_drops_only_that_token(
    world: TeamWorld,
) -> None:
    browser = world.browser()
    listed = browser.sign_in("alice")
    world.refusing.allow = 1  # the search's first page, then 401
    page = browser.get(path_of(listed) + "?q=policy")
    assert page.status_code == 200  # the stream had started
    assert "AIRisk stopped accepting the access token" in text(page)
    assert "Enter a new token" not in text(page)
    world.refusing.allow = None
    world.refusing.on = False
    minted = len(world.minted_tokens())
    again = browser.get(path_of(listed) + "?q=policy")
    # Still signed in: a new token, the search completes.
    assert again.status_code == 200 and "Signed in as Alice Martin" in text(again)
    assert "stopped" not in text(again)
    assert len(world.minted_tokens()) == minted + 1


def test_a_sign_in_left_open_too_long_starts_again(
    world: TeamWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    browser = world.browser()
    start = browser.client.get("/sso/login")
    browser.at_provider(start.headers["Location"], "bob", come_back=False)
    callback = urlsplit(browser.callback)
    later = time.time() + 601  # the flow's state lives ten minutes
    monkeypatch.setattr(time, "time", lambda: later)
    page = browser.client.get(f"{callback.path}?{callback.query}")
    monkeypatch.undo()
    assert page.status_code == 400
    assert "Start again" in text(page)


def test_two_team_apps_in_one_process_keep_their_own_provider(
    world: TeamWorld, tmp_path: Path
) -> None:
    other = TeamWorld(tmp_path)
    try:
        for each in (world, other):
            start = each.browser().client.get("/sso/login")
            assert start.headers["Location"].startswith(each.idp.issuer + "/")
            assert each.browser().sign_in("bob").status_code == 200
    finally:
        other.stop()


def test_an_unreachable_sso_provider_is_a_page(tmp_path: Path) -> None:
    app = make_app(
        tmp_path,
        AUTH_MODE="team",
        OIDC_ISSUER="http://127.0.0.1:9",
        OIDC_CLIENT_ID="dashboard",
        OIDC_CLIENT_SECRET=SSO_SECRET,
        REVIEWER_GROUPS=["airisk-reviewers"],
        AIRISK_CLIENT_ID="api",
        AIRISK_CLIENT_SECRET=AIRISK_SECRET,
        AIRISK_REDIRECT_URI="http://localhost/airisk/callback",
    )
    response = app.test_client().get("/sso/login")
    assert response.status_code == 503
    assert "sign-in service did not answer" in text(response)
    assert SSO_SECRET not in response.get_data(as_text=True)


def test_two_airisk_users_with_one_email_match_no_one(world: TeamWorld) -> None:
    users = world.demo_app.extensions["airisk_demo"].user_records
    twin = {**next(u for u in users if u["email"] == BOB), "id": "bob-twin-id"}
    users.append(twin)
    try:
        page = world.browser().sign_in("bob")
    finally:
        users.remove(twin)
    assert page.status_code == 403
    assert "2 AIRisk users have the e-mail address bob.chen@" in text(page)


def test_a_large_tenant_lists_the_first_people_and_asks_for_a_search(
    world: TeamWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    from webapp.web import people

    monkeypatch.setattr(people, "MAX_LISTED", 2)
    picker = world.browser().sign_in("rita")
    listed = Page(picker.get_data(as_text=True))
    assert len([a for a in listed.find_all("a") if "/u/" in (a.get("href") or "")]) == 2
    assert "The first 2 are listed; search to narrow the list." in listed.text
