"""The demo AIRisk API's routes, under ``/api``.

Semantics the vendor leaves undocumented, and what the demo does:

- Lists are sorted by ``lastUpdated``, newest first (what the public client shows).
- ``metadatasearch`` is trimmed, then matched case-insensitively as a substring
  of any entry of a conversation's ``metaData``; a conversation whose
  ``metaData`` is null or empty never matches a non-empty search. An empty
  search matches everything.
- ``results`` may be capped below what was asked (``max_results``), as a
  real tenant may: a short page is then not the end of the history.
- An empty ``agentid`` query value means "no agent filter"; on
  ``GetConversations/<agentid>`` (the documented form) the path wins over
  the query.
- Paths route as ASP.NET Core routes them: literal segments in any case,
  with or without a trailing slash (:class:`AspNetPaths`).
- Errors are RFC 9457 ProblemDetails in ASP.NET Core's shape (``type``,
  ``title``, ``status``, ``traceId``; ``errors`` on 400).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any, ParamSpec

from flask import Blueprint, Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException

from .conversations import Json
from .data import Dataset

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

P = ParamSpec("P")

bp = Blueprint("demo_api", __name__, url_prefix="/api")

JSON_TYPE = "application/json; charset=utf-8"
PROBLEM_TYPE = "application/problem+json; charset=utf-8"

# ASP.NET Core's default ProblemDetails "type" links, by status.
_PROBLEM_TYPES = {
    400: "https://tools.ietf.org/html/rfc9110#section-15.5.1",
    401: "https://tools.ietf.org/html/rfc9110#section-15.5.2",
    403: "https://tools.ietf.org/html/rfc9110#section-15.5.4",
    404: "https://tools.ietf.org/html/rfc9110#section-15.5.5",
    405: "https://tools.ietf.org/html/rfc9110#section-15.5.6",
    500: "https://tools.ietf.org/html/rfc9110#section-15.6.1",
}
_INT = re.compile(r"-?\d{1,10}")
#: What GetConversation leaves out for the dataset's ``sparse`` conversations.
_LIST_ONLY_FIELDS = frozenset(
    {
        "createdDate",
        "lastUpdated",
        "promptTokens",
        "completionTokens",
        "totalTokens",
        "currentCost",
        "metaData",
    }
)
_MAX_RESULTS = 1000


def dataset() -> Dataset:
    """Return the dataset of the running demo app."""
    data: Dataset = current_app.extensions["airisk_demo"]
    return data


def json_response(payload: Any) -> Response:
    """Serialise a payload compactly, as ASP.NET does, keeping non-ASCII text."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    # A lone surrogate (only in the hostile data) cannot be UTF-8: write it as
    # the JSON escape "\ud800", which a real server can send too.
    data = body.encode("utf-8", "backslashreplace")
    return Response(data, status=200, content_type=JSON_TYPE)


def problem(status: int, title: str, **extra: Any) -> Response:
    """Return an RFC 9457 ProblemDetails response."""
    payload: Json = {
        "type": _PROBLEM_TYPES.get(status, _PROBLEM_TYPES[500]),
        "title": title,
        "status": status,
        **extra,
        # ASP.NET's W3C trace id: random per request, like the real server.
        "traceId": f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00",
    }
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    response = Response(body.encode("utf-8"), status=status, content_type=PROBLEM_TYPE)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return response


def http_error(error: HTTPException) -> Response:
    """Turn a routing or method error into ProblemDetails."""
    status = error.code or 500
    response = problem(status, error.name)
    for name, value in error.get_headers():
        if name.lower() == "allow":
            response.headers["Allow"] = value
    return response


class AspNetPaths:
    """Route paths as ASP.NET Core does: literals in any case, trailing slash ok.

    Werkzeug matches case-sensitively and answers 404 for an extra trailing
    slash; AIRisk (ASP.NET) accepts ``/api/chat/getconversations/`` as well,
    and a client written against it may send either.
    """

    def __init__(self, app: Flask) -> None:
        self.wsgi_app = app.wsgi_app
        self.literals = {
            part.lower(): part
            for rule in app.url_map.iter_rules()
            for part in rule.rule.split("/")
            if part and "<" not in part
        }

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        path: str = environ.get("PATH_INFO", "")
        if len(path) > 1 and path.endswith("/"):
            path = path[:-1]
        environ["PATH_INFO"] = "/".join(
            self.literals.get(part.lower(), part) for part in path.split("/")
        )
        return self.wsgi_app(environ, start_response)


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    # Auth schemes are case-insensitive (RFC 9110 section 11.1).
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _authorise(*, generic: bool) -> Response | None:
    token = _bearer_token() or ""
    # Fixed demo tokens first, then tokens minted through OAuth2 (oauth2.py).
    grant = dataset().grant_for(token)
    if grant is None:
        grant = current_app.extensions["airisk_demo_oauth"].grant_for(token)
    if grant is None:
        return problem(401, "Unauthorized")
    if grant.is_generic != generic:
        return problem(403, "Forbidden")
    g.user_id = grant.user_id
    return None


def user_token_required(view: Callable[P, Response]) -> Callable[P, Response]:
    """Answer 401/403 unless the request carries a valid user token."""

    @wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> Response:
        return _authorise(generic=False) or view(*args, **kwargs)

    return wrapped


def generic_token_required(view: Callable[P, Response]) -> Callable[P, Response]:
    """Answer 401/403 unless the request carries the application token."""

    @wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> Response:
        return _authorise(generic=True) or view(*args, **kwargs)

    return wrapped


def _int_arg(
    name: str, default: int, low: int, high: int, errors: dict[str, list[str]]
) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not _INT.fullmatch(raw.strip()):
        errors[name] = [f"The value '{raw}' is not valid."]
        return default
    value = int(raw)
    if not low <= value <= high:
        errors[name] = [f"The field {name} must be between {low} and {high}."]
    return value


def _matches(summary: Json, search: str) -> bool:
    return any(search in tag.lower() for tag in summary["metaData"] or ())


def _list(agent_id: str | None) -> Response:
    errors: dict[str, list[str]] = {}
    results = _int_arg("results", 20, 1, _MAX_RESULTS, errors)
    skip = _int_arg("skip", 0, 0, 2_147_483_647, errors)
    if errors:
        return problem(400, "One or more validation errors occurred.", errors=errors)
    # A tenant may serve fewer rows than asked (``--max-results``).
    cap = current_app.config.get("AIRISK_DEMO_MAX_RESULTS")
    if cap:
        results = min(results, cap)
    search = request.args.get("metadatasearch", "").strip().lower()
    summaries = dataset().summaries_for(g.user_id)
    if agent_id or search:
        summaries = [
            s
            for s in summaries
            if (not agent_id or s["botID"] == agent_id)
            and (not search or _matches(s, search))
        ]
    return json_response(summaries[skip : skip + results])


@bp.get("/Chat/ListAgents", provide_automatic_options=False)
@user_token_required
def list_agents() -> Response:
    """Return every agent of the tenant (and the hostile user's extra ones)."""
    return json_response(dataset().agents_for(g.user_id))


@bp.get("/Chat/GetConversations", provide_automatic_options=False)
@user_token_required
def get_conversations() -> Response:
    """Return one page of the user's conversation summaries."""
    return _list(request.args.get("agentid") or None)


@bp.get("/Chat/GetConversations/<agentid>", provide_automatic_options=False)
@user_token_required
def get_agent_conversations(agentid: str) -> Response:
    """Return one page of the user's conversation summaries with one agent."""
    return _list(agentid)


@bp.get("/Chat/GetConversation/<conversation_id>", provide_automatic_options=False)
@user_token_required
def get_conversation(conversation_id: str) -> Response:
    """Return one of the user's conversations with all its messages."""
    conv = dataset().conversation(g.user_id, conversation_id)
    if conv is None:
        return problem(404, "Not Found")
    # Full conversations are immutable, so each is encoded once (the long one
    # is ~0.5 MB and would otherwise cost a few ms per request).
    cache: dict[str, bytes] = current_app.extensions["airisk_demo_cache"]
    body = cache.get(conversation_id)
    if body is None:
        if conversation_id in dataset().sparse:
            conv = {k: v for k, v in conv.items() if k not in _LIST_ONLY_FIELDS}
        body = json_response(conv).get_data()
        cache[conversation_id] = body
    return Response(body, status=200, content_type=JSON_TYPE)


@bp.get("/Users/ListUsers", provide_automatic_options=False)
@generic_token_required
def list_users() -> Response:
    """Return the tenant's users (application tokens only)."""
    return json_response(dataset().user_records)
