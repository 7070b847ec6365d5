"""Team mode: who may review, who may read the trail, and what the trail says.

Real SSO provider, real demo AIRisk API (tests/team_world.py). rita is a
reviewer, sam a reviewer and an auditor (group "security"), bob a member.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

import pytest
from support import Page
from support.team_world import TeamBrowser, TeamWorld, iterate
from werkzeug.test import TestResponse

from webapp.store import trail

pytestmark = pytest.mark.slow

BOB = "bob.chen@northwind.example"
DETAIL = re.compile(r'href="(/u/[^"/]+/conversations/[A-Za-z0-9_-]+)[?"]')
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TeamWorld]:
    yield from iterate(
        TeamWorld(tmp_path_factory.mktemp("team"), AUDITOR_GROUPS=["security"])
    )


def text(response: TestResponse) -> str:
    return Page(response.get_data(as_text=True)).text


def bobs_conversation(browser: TeamBrowser, world: TeamWorld) -> str:
    page = browser.get(f"/u/{world.user_id(BOB)}/conversations")
    found = DETAIL.search(page.get_data(as_text=True))
    assert found
    return found.group(1)


def post(browser: TeamBrowser, path: str, form_page: str, **data: str) -> TestResponse:
    token = CSRF.search(browser.get(form_page).get_data(as_text=True))
    assert token
    return browser.client.post(path, data={"csrf_token": token.group(1), **data})


def rows(world: TeamWorld) -> list[trail.TrailRow]:
    return list(
        reversed(trail.search(world.app.extensions["store"], trail.TrailFilter()))
    )


def test_a_member_cannot_set_states_or_read_the_trail(world: TeamWorld) -> None:
    bob = world.browser()
    bob.sign_in("bob")
    detail = bobs_conversation(bob, world)
    page = text(bob.get(detail))
    assert "State: new" in page
    assert "Mark escalated" not in page
    answer = post(bob, f"{detail}/review", detail, state="cleared")
    assert answer.status_code == 403
    assert "State: new" in text(bob.get(detail))
    assert bob.client.get("/audit").status_code == 403
    assert bob.client.get("/audit/export.csv").status_code == 403
    assert "Who has seen" not in text(bob.get(detail))


def test_a_reviewer_sets_a_state_and_the_trail_names_them(world: TeamWorld) -> None:
    rita = world.browser()
    rita.sign_in("rita")
    detail = bobs_conversation(rita, world)
    bob_id = world.user_id(BOB)
    answer = post(rita, f"{detail}/review", detail, state="escalated", back=detail)
    assert answer.status_code == 303
    assert "State: escalated" in text(rita.get(detail))
    recorded = rows(world)
    change = next(r for r in reversed(recorded) if r.action == "review.change")
    assert change.email == "rita@northwind.example" or change.email.startswith("rita")
    assert change.acting_as == bob_id
    assert change.target == "new -> escalated"
    actions = [r.action for r in recorded if r.email == change.email]
    assert "sign-in" in actions
    assert "user.switch" in actions
    view = next(r for r in reversed(recorded) if r.action == "conversation.view")
    assert view.acting_as == bob_id
    assert view.conversation == detail.rsplit("/", 1)[1]


def test_a_forged_post_without_csrf_fails(world: TeamWorld) -> None:
    rita = world.browser()
    rita.sign_in("rita")
    detail = bobs_conversation(rita, world)
    answer = rita.client.post(f"{detail}/review", data={"state": "cleared"})
    assert answer.status_code == 400


def test_a_member_cannot_review_another_users_conversation(world: TeamWorld) -> None:
    rita = world.browser()
    rita.sign_in("rita")
    detail = bobs_conversation(rita, world)
    alice = world.browser()
    alice.sign_in("alice")
    answer = post(alice, f"{detail}/review", "/conversations", state="cleared")
    assert answer.status_code == 403


def test_an_auditor_reads_the_trail_exports_it_and_sees_who_viewed(
    world: TeamWorld,
) -> None:
    rita = world.browser()
    rita.sign_in("rita")
    detail = bobs_conversation(rita, world)
    rita.get(detail)
    cid = detail.rsplit("/", 1)[1]
    sam = world.browser()
    sam.sign_in("sam")
    page = sam.get(f"/audit?conversation={cid}")
    assert page.status_code == 200
    shown = text(page)
    assert "conversation.view" in shown
    assert "rita" in shown
    exported = sam.client.get(f"/audit/export.csv?conversation={cid}")
    assert exported.status_code == 200
    table = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert table and all(row["conversation"] == cid for row in table)
    body = exported.get_data(as_text=True)
    assert not any(token in body for token in world.minted_tokens())
    as_json = sam.client.get("/audit/export.json?action=sign-in").get_json()
    assert as_json and {r["action"] for r in as_json} == {"sign-in"}
    seen = text(sam.get(detail))
    assert "Who has seen this conversation" in seen
    assert "rita" in seen
    # Reading the trail is itself on the trail.
    assert any(r.action == "audit.view" for r in rows(world))
    assert trail.verify(world.app.extensions["store"]).ok


def test_sign_out_is_recorded(world: TeamWorld) -> None:
    bob = world.browser()
    bob.sign_in("bob")
    token = CSRF.search(bob.get("/").get_data(as_text=True))
    assert token
    bob.client.post("/logout", data={"csrf_token": token.group(1)})
    assert rows(world)[-1].action == "sign-out"
    assert rows(world)[-1].email == BOB or "bob" in str(rows(world)[-1].email)


def test_the_queue_covers_every_user_for_a_reviewer_and_one_for_a_member(
    world: TeamWorld,
) -> None:
    rita = world.browser()
    rita.sign_in("rita")
    detail = bobs_conversation(rita, world)
    post(rita, f"{detail}/review", detail, state="escalated", back=detail)
    everyone = rita.get("/review?users=all")
    assert everyone.request.path.endswith("/review")
    assert "Every AIRisk user." in text(everyone)
    assert detail in everyone.get_data(as_text=True)
    alice = world.browser()
    alice.sign_in("alice")
    own = alice.get("/review?users=all")
    # A member's queue is their own history, whatever the URL asks.
    assert detail not in own.get_data(as_text=True)
    assert "Every AIRisk user" not in text(own)


ALICE = "alice.martin@northwind.example"
FLAGGED = re.compile(r"(\d+) flagged, not reviewed")
REFRESH = re.compile(r'http-equiv="refresh" content="0;url=([^"]+)"')


def scanned(browser: TeamBrowser, path: str) -> TestResponse:
    """Open ``path``, following each streamed scan's refresh to the queue."""
    response = browser.get(path)
    for _ in range(10):
        refresh = REFRESH.search(response.get_data(as_text=True))
        if refresh is None:
            break
        assert "progress-line" in response.get_data(as_text=True)
        response = browser.get(refresh.group(1).replace("&amp;", "&"))
    return response


def test_the_queue_scans_two_users_and_reuses_the_scans(world: TeamWorld) -> None:
    rita = world.browser()
    rita.sign_in("rita")
    bobs_conversation(rita, world)  # a reviewer picks a history first
    bob, alice = world.user_id(BOB), world.user_id(ALICE)
    calls = world.refusing.chat_calls
    queue = scanned(rita, f"/review?users={bob}+{alice}&scan=1")
    html = queue.get_data(as_text=True)
    # Both users' histories were scanned (tokens minted for each) and their
    # flagged, unreviewed conversations are listed, linked per user.
    assert world.refusing.chat_calls > calls
    assert len(FLAGGED.findall(text(queue))) == 2
    assert f"/u/{bob}/conversations/" in html
    assert f"/u/{alice}/conversations/" in html
    assert "Scan the whole history for flagged" not in html
    # Within AIRISK_SCAN_TTL, a second visit costs no AIRisk call.
    calls = world.refusing.chat_calls
    again = scanned(rita, f"/review?users={bob}+{alice}&scan=1")
    assert world.refusing.chat_calls == calls
    assert FLAGGED.findall(text(again)) == FLAGGED.findall(text(queue))


def test_a_member_cannot_queue_another_users_history(world: TeamWorld) -> None:
    alice = world.browser()
    alice.sign_in("alice")
    bob = world.user_id(BOB)
    own = scanned(alice, f"/review?users={bob}&scan=1&stopuser={bob}")
    html = own.get_data(as_text=True)
    assert own.status_code == 200
    # Neither scanned nor named: only alice's own history is in the queue.
    assert bob not in text(own)
    assert f"/u/{bob}/" not in html
    assert world.user_id(ALICE) in text(own)
    assert len(FLAGGED.findall(text(own))) == 1
