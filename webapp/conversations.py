"""Browse conversations: the list (one API page per page) and one conversation.

Every state of a page lives in its query string, so every view is a URL a
reviewer can send to a colleague.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from .airisk import Agent, valid_id
from .auth import client, current_token, token_required

bp = Blueprint("conversations", __name__)

PAGE_SIZES = (20, 50, 100)
MAX_QUERY_LENGTH = 200
#: Deepest page reachable by URL: keeps ``skip`` within what AIRisk accepts.
MAX_PAGE = 10_000


@dataclass(frozen=True)
class ListState:
    """The normalised query string of the conversation list."""

    page: int = 1
    size: int = PAGE_SIZES[0]
    agent: str = ""
    q: str = ""

    @classmethod
    def from_args(cls, args: Any) -> ListState:
        """Read the list state from request args; bad values fall back quietly."""
        page = _int_arg(args.get("page"), 1)
        size = _int_arg(args.get("size"), PAGE_SIZES[0])
        agent = (args.get("agent") or "").strip()
        return cls(
            page=min(max(page, 1), MAX_PAGE),
            size=size if size in PAGE_SIZES else PAGE_SIZES[0],
            agent=agent if valid_id(agent) else "",
            q=(args.get("q") or "").strip()[:MAX_QUERY_LENGTH],
        )

    def args(self, **changes: Any) -> dict[str, Any]:
        """Return query args for a link to this state with ``changes``, minimal."""
        values = {
            "page": self.page,
            "size": self.size,
            "agent": self.agent,
            "q": self.q,
        }
        values.update(changes)
        defaults = {"page": 1, "size": PAGE_SIZES[0], "agent": "", "q": ""}
        return {k: v for k, v in values.items() if v != defaults[k]}


def _int_arg(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _agent_names(agents: list[Agent]) -> dict[str, str]:
    return {agent.id: agent.name for agent in agents}


@bp.get("/")
def home() -> Response:
    """Send the user to the conversation list."""
    return redirect(url_for("conversations.index"))


@bp.get("/conversations")
@token_required
def index() -> str:
    """List one page of conversations, newest first, with filters."""
    token = current_token()
    assert token is not None
    state = ListState.from_args(request.args)
    agents = client().list_agents(token)
    rows = client().list_conversations(
        token,
        results=state.size,
        skip=(state.page - 1) * state.size,
        search=state.q,
        agent_id=state.agent or None,
    )
    return render_template(
        "conversations/index.html",
        state=state,
        rows=rows,
        agents=agents,
        agent_names=_agent_names(agents),
        # AIRisk sends no total: a full page means there may be another one.
        has_next=len(rows) == state.size and state.page < MAX_PAGE,
        page_sizes=PAGE_SIZES,
    )


@bp.get("/conversations/<cid>")
@token_required
def detail(cid: str) -> str:
    """Show one conversation with its messages."""
    token = current_token()
    assert token is not None
    show_system = request.args.get("system") == "1"
    # Fetch the conversation first: a bad id is a 404 with no upstream call.
    conversation = client().get_conversation(token, cid)
    agents = client().list_agents(token)
    messages = [m for m in conversation.messages if show_system or not m.is_system]
    return render_template(
        "conversations/detail.html",
        conversation=conversation,
        summary=conversation.summary,
        messages=messages,
        hidden_system=len(conversation.messages) - len(messages),
        system_count=sum(1 for m in conversation.messages if m.is_system),
        show_system=show_system,
        agent_names=_agent_names(agents),
    )
