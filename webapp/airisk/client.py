"""Speak HTTP to AIRisk: the only module of the dashboard that imports requests.

Every call sends ``Authorization: Bearer <token>`` through :class:`BearerAuth`,
has a connect/read timeout *and* a total deadline with a size cap on the body,
follows no redirects, ignores proxy variables and ``~/.netrc``, and turns every
failure into one of the typed errors in :mod:`webapp.airisk.errors`.

The deadline covers the whole call (connect, headers, retries, body): a
watchdog thread shuts down the socket of a call that runs past it, because a
socket timeout only bounds the wait for the *next* byte.
"""

from __future__ import annotations

import hashlib
import http.cookiejar
import json
import logging
import re
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar, cast
from urllib.parse import parse_qs, quote, urlsplit

import msgspec
import requests
from urllib3.exceptions import ReadTimeoutError
from urllib3.util import Retry

from .deadline import WATCHDOG, Call, DeadlineAdapter
from .errors import (
    AIRiskError,
    AuthorizationDenied,
    BadResponse,
    ClientRejected,
    CodeRejected,
    Forbidden,
    NotFound,
    OAuthFailed,
    RateLimited,
    RefusedId,
    StateMismatch,
    TokenRejected,
    Unavailable,
    UpstreamTimeout,
    WrongBaseURL,
)
from .models import (
    Agent,
    AIRiskUser,
    AuthorizationCode,
    ClientCredentials,
    Conversation,
    ConversationSummary,
    MintedToken,
    parse_agents,
    parse_conversation,
    parse_minted_token,
    parse_summaries,
    parse_users,
)

log = logging.getLogger(__name__)

#: [calls, seconds] of the AIRisk calls of the current request, if someone
#: (the request log) set it; the client knows nothing about Flask.
upstream_stats: ContextVar[list[float]] = ContextVar("upstream_stats")

T = TypeVar("T")

#: What a conversation (or agent) id may look like. Dots and slashes are out:
#: requests normalises ``..`` segments, so ``../Users/ListUsers`` would retarget
#: the call to another endpoint.
ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,128}")

_CHUNK = 64 * 1024
#: Bodies at least this large (a list page of a few rows) keep their parsed
#: records for an identical body to reuse, least recently used first out once
#: the kept bodies add up to _REUSE_MAX_BYTES (see AIRiskClient._parsed).
#: Parsed records take about three times their body's size in memory, so
#: this is about 50 MiB per process at most. No body over a quarter of the
#: budget is kept, so one cannot push out all the others.
_REUSE_MIN_BYTES = 4 * 1024
_REUSE_MAX_BYTES = 16 * 1024 * 1024
#: Longest Retry-After passed on to the browser, in seconds.
_MAX_RETRY_AFTER = 24 * 3600
#: Endpoints that exist for every token: a 404 from them is a wrong address.
_LIST_ENDPOINTS = frozenset({"ListAgents", "GetConversations"})
#: Seconds the answer of :meth:`AIRiskClient.api_found` is reused (readiness
#: probes come every few seconds; the address does not change while running).
_PROBE_TTL = 30.0
_CHECK_BASE = " (the API is not at this address: check AIRISK_BASE_URL)"
#: Most bytes of an OAuth2 error body read: the documented ones are one line.
_MAX_OAUTH_ERROR_BYTES = 1024
#: The plain-text 400 answers the OAuth2 endpoints document (and the demo's
#: own), lower-cased, with the error each one means. Only these words ever
#: reach a log line: any other body is "unrecognised", never echoed.
_OAUTH_PHRASES: dict[str, type[OAuthFailed]] = {
    "invalid client_id": ClientRejected,
    "invalid redirect_uri": ClientRejected,
    "invalid code": CodeRejected,
    "invalid userid": OAuthFailed,
}
#: What an ``error`` parameter of an OAuth2 redirect may be for a log line.
_OAUTH_ERROR_CODE = re.compile(r"[a-z_]{1,64}")


def _own_copy(records: T) -> T:
    """Return ``records``, a list of them copied (the records are frozen)."""
    return cast(T, list(records)) if isinstance(records, list) else records


def valid_id(value: str) -> bool:
    """Return whether ``value`` is acceptable as a conversation or agent id."""
    return ID_PATTERN.fullmatch(value) is not None


class _RefusedIds:
    """Log each id the id guard refuses once, so a pattern too strict for real
    AIRisk ids shows up in the log without one line per page view.
    """

    _MAX = 1024

    def __init__(self) -> None:
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()

    def note(self, kind: str, value: str) -> None:
        """Log that ``value`` was refused as a ``kind`` id, unless already logged."""
        digest = hashlib.blake2b(
            value.encode("utf-8", "surrogatepass"), digest_size=16
        ).digest()
        with self._lock:
            if digest in self._seen:
                return
            self._seen[digest] = None
            if len(self._seen) > self._MAX:
                self._seen.popitem(last=False)
        # repr() escapes newlines and control characters: one log line per id.
        log.warning(
            "Refused %s id %s: it does not match the id pattern (no AIRisk call)",
            kind,
            repr(value[:80]) + ("..." if len(value) > 80 else ""),
        )


class RefuseAllCookies(http.cookiejar.DefaultCookiePolicy):
    """A cookie policy that neither keeps nor sends any cookie.

    One ``requests.Session`` serves every user of a worker thread in turn: a
    cookie that AIRisk (or a gateway in front of it) set for one user's call
    would otherwise go out with the next user's calls, and a gateway that
    pins sessions by cookie would answer them with the first user's data.
    """

    def set_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        """Refuse to keep ``cookie``."""
        return False

    def return_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        """Refuse to send ``cookie``."""
        return False


class BearerAuth(requests.auth.AuthBase):
    """Attach ``Authorization: Bearer <token>``; the repr never shows the token."""

    __slots__ = ("_token",)

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "BearerAuth(<hidden>)"


@dataclass(frozen=True)
class ClientSettings:
    """How the client reaches AIRisk; built from the app config."""

    base_url: str
    connect_timeout: float = 3.05
    read_timeout: float = 10.0
    deadline: float = 15.0
    max_bytes: int = 20 * 1024 * 1024
    retries: int = 1


class AIRiskClient:
    """Call the AIRisk API on behalf of whichever token a request carries.

    One instance serves the whole app; it keeps one pooled ``requests.Session``
    per thread so page views reuse their keep-alive connection.
    """

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self._base = settings.base_url.rstrip("/")
        self._local = threading.local()
        #: (parser, digest) -> (body length, parsed records), oldest first.
        self._reuse: OrderedDict[tuple[str, bytes], tuple[int, Any]] = OrderedDict()
        self._reuse_bytes = 0
        self._reuse_lock = threading.Lock()
        #: (monotonic expiry, answer) of the last api_found() probe.
        self._probe: tuple[float, bool | None] = (0.0, None)
        self._refused = _RefusedIds()

    # -- the API --------------------------------------------------------

    def list_agents(self, token: str) -> list[Agent]:
        """Return the agents this token can see.

        :raises AIRiskError: a subclass for each kind of failure.
        """
        return self._get(token, "/api/Chat/ListAgents", None, parse_agents)

    def list_conversations(
        self,
        token: str,
        *,
        results: int = 20,
        skip: int = 0,
        tag: str = "",
        agent_id: str | None = None,
    ) -> list[ConversationSummary]:
        """Return one page of conversation summaries (newest first upstream).

        :raises AIRiskError: a subclass for each kind of failure.
        """
        params: dict[str, str | int] = {
            "results": results,
            "skip": skip,
            "metadatasearch": tag,
        }
        path = "/api/Chat/GetConversations"
        if agent_id:
            if not valid_id(agent_id):
                # An agent that cannot exist has no conversations.
                self._refused.note("agent", agent_id)
                return []
            # The documented form: every vendor example puts the agent in the
            # path, none uses the ``agentid`` query parameter.
            path += "/" + quote(agent_id, safe="")
            try:
                return self._get(token, path, params, parse_summaries)
            except WrongBaseURL:
                # AIRisk may answer 404 for an agent it does not know; only
                # an API that is not found at all is a wrong address.
                if self.api_found():
                    return []
                raise
        return self._get(token, path, params, parse_summaries)

    def get_conversation(self, token: str, conversation_id: str) -> Conversation:
        """Return one conversation with its messages.

        :raises NotFound: for an id that cannot exist, without calling AIRisk.
        :raises AIRiskError: a subclass for each other kind of failure.
        """
        if not valid_id(conversation_id):
            self._refused.note("conversation", conversation_id)
            raise RefusedId("conversation id does not match the id pattern")
        path = "/api/Chat/GetConversation/" + quote(conversation_id, safe="")
        try:
            conversation = self._get(token, path, None, parse_conversation)
        except NotFound as exc:
            # Under a wrong base URL every conversation is "not found": say
            # what is really wrong when the API itself is not there.
            if self.api_found() is False:
                raise WrongBaseURL(exc.detail + _CHECK_BASE) from exc
            raise
        if not conversation.summary.id:
            raise BadResponse("GetConversation: answer has no id")
        return conversation

    def list_users(self, token: str) -> list[AIRiskUser]:
        """Return the tenant's users (needs a generic token).

        :raises AIRiskError: a subclass for each kind of failure.
        """
        return self._get(token, "/api/Users/ListUsers", None, parse_users)

    def authorize(
        self, client: ClientCredentials, *, state: str, user_id: str | None = None
    ) -> AuthorizationCode:
        """Ask AIRisk for a code without following its redirect.

        The live vendor client does the same: AIRisk answers 302 to the
        registered redirect URI with ``code`` and ``state`` in the query,
        which are read from ``Location`` here instead of a browser.

        :raises ClientRejected: if AIRisk refuses the client or redirect URI.
        :raises AuthorizationDenied: if the redirect carries an error.
        :raises StateMismatch: if the redirect carries another ``state``.
        :raises OAuthFailed: for any other answer than a redirect with a code.
        :raises Unavailable: if AIRisk cannot be reached or is down.
        """
        params: dict[str, str] = {
            "client_id": client.client_id,
            "redirect_uri": client.redirect_uri,
            "state": state,
        }
        if user_id is not None:
            params["userid"] = user_id
        status, location = self._oauth("GET", "/api/oauth2", params=params)
        if status != 302:
            raise OAuthFailed(f"oauth2: HTTP {status} instead of a redirect")
        return _code_from_location(location, client.redirect_uri, state)

    def exchange_code(
        self, client: ClientCredentials, code: str, *, user_id: str | None = None
    ) -> MintedToken:
        """Trade a code for a token (form-encoded, as documented); never retried.

        :raises CodeRejected: if AIRisk refuses the code (spent, expired).
        :raises ClientRejected: if AIRisk refuses the client or its secret.
        :raises BadResponse: if the answer is not a token.
        :raises AIRiskError: a subclass for each other kind of failure.
        """
        form: dict[str, str] = {
            "client_id": client.client_id,
            "client_secret": client.client_secret,
            "code": code,
            "redirect_uri": client.redirect_uri,
        }
        if user_id is not None:
            form["userid"] = user_id
        status, body = self._oauth("POST", "/api/oauth2/Token", data=form)
        if status != 200:
            raise BadResponse(f"oauth2/Token: HTTP {status}")
        payload = _decode("oauth2/Token", body.encode("utf-8"))
        return parse_minted_token(payload, user_id, datetime.now(UTC))

    def check_token(self, token: str) -> None:
        """Ask AIRisk whether it accepts ``token`` at all, with one small call.

        :raises TokenRejected: if AIRisk answers 401.
        :raises AIRiskError: a subclass for each other kind of failure.
        """
        self.list_conversations(token, results=1)

    def api_found(self) -> bool | None:
        """Return whether AIRisk's API answers at the base URL (None: unknown).

        Asks ListAgents without a token: ASP.NET routes before it
        authenticates, so a known path answers 401 and only a wrong base URL
        (or a tenant that answers elsewhere) answers 404. The answer is
        reused for a short while; no token is involved, so it is shared.
        """
        expires, found = self._probe
        if time.monotonic() < expires:
            return found
        try:
            response = self._session().get(
                self._base + "/api/Chat/ListAgents",
                headers={"Accept": "application/json"},
                timeout=(self.settings.connect_timeout, self.settings.read_timeout),
                allow_redirects=False,
                stream=True,
            )
        except requests.RequestException as exc:
            log.info("AIRisk address probe failed: %s", type(exc).__name__)
            found = None
        else:
            # The body is not wanted: closing drops the connection instead
            # of reading whatever a wrong host sends.
            response.close()
            found = response.status_code != 404
        self._probe = (time.monotonic() + _PROBE_TTL, found)
        return found

    # -- HTTP -----------------------------------------------------------

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            # Proxy variables would route the token elsewhere, and a ~/.netrc
            # entry would replace the bearer header.
            session.trust_env = False
            # Calls of different users share this session: it keeps no cookie.
            session.cookies.set_policy(RefuseAllCookies())
            retry = Retry(
                total=self.settings.retries,
                connect=self.settings.retries,
                read=0,
                status=self.settings.retries,
                other=0,
                allowed_methods=frozenset({"GET"}),
                status_forcelist=frozenset({502, 503, 504}),
                backoff_factor=0.2,
                # urllib3 would otherwise sleep for whatever Retry-After says
                # (up to hours) on 429/503, holding the worker.
                respect_retry_after_header=False,
                raise_on_status=False,
                raise_on_redirect=False,
            )
            adapter = DeadlineAdapter(
                max_retries=retry, pool_connections=4, pool_maxsize=4
            )
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._local.session = session
        return session

    def _get(
        self,
        token: str,
        path: str,
        params: dict[str, str | int] | None,
        parse: Callable[[Any], T],
    ) -> T:
        started = time.monotonic()
        try:
            return self._call(token, path, params, parse, started)
        finally:
            stats = upstream_stats.get(None)
            if stats is not None:
                stats[0] += 1
                stats[1] += time.monotonic() - started

    def _call(
        self,
        token: str,
        path: str,
        params: dict[str, str | int] | None,
        parse: Callable[[Any], T],
        started: float,
    ) -> T:
        endpoint = path.split("/")[3] if path.count("/") >= 3 else path
        call = Call(started + self.settings.deadline)
        with WATCHDOG.watch(call):
            response = self._send(endpoint, token, path, params, call)
            try:
                self._raise_for_status(endpoint, response)
                body = self._read_body(endpoint, response, call)
            except BaseException:
                # A half-read or unwanted body poisons the connection: drop it.
                response.close()
                raise
        if call.expired:
            # The watchdog cut the socket as the body ended: it cannot be reused.
            response.close()
            raise UpstreamTimeout(f"{endpoint}: body not complete in time")
        # The body was read to its end, so the connection can serve the next
        # page view (keep-alive).
        response.raw.release_conn()
        log.debug(
            "AIRisk %s %s in %.1f ms",
            endpoint,
            response.status_code,
            (time.monotonic() - started) * 1000,
        )
        return self._parsed(endpoint, body, parse)

    def _parsed(self, endpoint: str, body: bytes, parse: Callable[[Any], T]) -> T:
        """Decode and parse ``body``, reusing the records of an identical body.

        A page viewed again (a refresh, back from a conversation, a shared
        link) usually comes back byte for byte the same; decoding and parsing
        it again is a large part of the page's own cost (a fifth of a cold
        list page's CPU, most of a long conversation's). The records are
        immutable and derived from the bytes alone, so reusing them cannot
        mix up two users' data; a list of them is handed out as a copy, so no
        caller can change what another gets. Tiny bodies are not worth a
        digest, and the kept bodies are bounded in bytes, to bound the memory.
        """
        size = len(body)
        if size < _REUSE_MIN_BYTES or size > _REUSE_MAX_BYTES // 4:
            return parse(_decode(endpoint, body))
        key = (parse.__name__, hashlib.blake2b(body, digest_size=20).digest())
        with self._reuse_lock:
            found = self._reuse.get(key)
            if found is not None:
                self._reuse.move_to_end(key)
                return _own_copy(found[1])
        value = parse(_decode(endpoint, body))
        with self._reuse_lock:
            if key not in self._reuse:
                self._reuse[key] = (size, value)
                self._reuse_bytes += size
            while self._reuse_bytes > _REUSE_MAX_BYTES:
                dropped, _ = self._reuse.popitem(last=False)[1]
                self._reuse_bytes -= dropped
        return _own_copy(value)

    def _send(
        self,
        endpoint: str,
        token: str | None,
        path: str,
        params: Mapping[str, str | int] | None,
        call: Call,
        *,
        method: str = "GET",
        data: dict[str, str] | None = None,
    ) -> requests.Response:
        """Send one request (bearer header when ``token``); raise on no answer."""
        try:
            return self._session().request(
                method,
                self._base + path,
                params=params,
                data=data,
                auth=BearerAuth(token) if token is not None else None,
                headers={"Accept": "application/json"},
                timeout=(self.settings.connect_timeout, self.settings.read_timeout),
                allow_redirects=False,
                stream=True,
            )
        except requests.RequestException as exc:
            if call.expired or _is_timeout(exc):
                raise UpstreamTimeout(f"{endpoint}: no answer in time") from exc
            raise Unavailable(f"{endpoint}: {type(exc).__name__}") from exc

    def _oauth(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        data: dict[str, str] | None = None,
    ) -> tuple[int, str]:
        """Call an OAuth2 endpoint; return the status and Location or body.

        No bearer header, no redirect followed, no retry of the POST (a code
        that reached AIRisk may be spent). A 200 or 302 is returned, every
        other answer raised as a typed error whose detail never quotes the
        body beyond :data:`_OAUTH_PHRASES`.
        """
        endpoint = path.removeprefix("/api/")
        started = time.monotonic()
        call = Call(started + self.settings.deadline)
        try:
            with WATCHDOG.watch(call):
                response = self._send(
                    endpoint, None, path, params, call, method=method, data=data
                )
                with response:
                    status = response.status_code
                    if status == 302:
                        return status, response.headers.get("Location", "")
                    if status in (400, 401, 403, 404):
                        self._raise_oauth_refusal(endpoint, response, call)
                    if status != 200:
                        self._raise_for_status(endpoint, response)
                    body = self._read_body(endpoint, response, call)
                    return status, body.decode("utf-8", "replace")
        finally:
            stats = upstream_stats.get(None)
            if stats is not None:
                stats[0] += 1
                stats[1] += time.monotonic() - started

    def _raise_oauth_refusal(
        self, endpoint: str, response: requests.Response, call: Call
    ) -> None:
        status = response.status_code
        detail = f"{endpoint}: HTTP {status}"
        if status == 401:
            # Documented for an unknown client (a ProblemDetails body).
            raise ClientRejected(detail)
        if status != 400:
            raise OAuthFailed(detail)
        try:
            response.raw.decode_content = True
            head = response.raw.read(_MAX_OAUTH_ERROR_BYTES)
        except Exception:  # a broken error body is still a refusal
            head = b""
        text = head.decode("utf-8", "replace").strip().strip('"').strip()
        error = _OAUTH_PHRASES.get(text.lower())
        if error is None:
            raise OAuthFailed(f"{detail} (unrecognised body)")
        raise error(f"{detail} ({text})")

    def _raise_for_status(self, endpoint: str, response: requests.Response) -> None:
        status = response.status_code
        if status in (200, 204):
            # 204 (no content) is an empty body, which each parser judges.
            return
        detail = f"{endpoint}: HTTP {status}"
        error: AIRiskError
        if status == 401:
            error = TokenRejected(detail)
        elif status == 403:
            error = Forbidden(detail)
        elif status == 404 and endpoint in _LIST_ENDPOINTS:
            error = WrongBaseURL(detail + _CHECK_BASE)
        elif status == 404:
            error = NotFound(detail)
        elif status == 429:
            error = RateLimited(
                detail, _retry_after(response.headers.get("Retry-After"))
            )
        elif status == 503:
            error = Unavailable(detail)
        elif status == 504:
            error = UpstreamTimeout(detail)
        else:
            # Redirects (not followed), other 4xx, 5xx.
            error = BadResponse(detail)
        raise error

    def _read_body(
        self, endpoint: str, response: requests.Response, call: Call
    ) -> bytes:
        """Read the body within the total deadline and the size cap.

        ``read1`` returns whatever arrived, so a body dripped a byte at a time
        ends at the deadline check here; a read that blocks on a line that
        never ends (a chunk size) is ended by the watchdog instead.
        """
        limit = self.settings.max_bytes
        length = _header_int(response.headers.get("Content-Length"))
        if length is not None and length > limit:
            raise BadResponse(f"{endpoint}: body of {length} bytes is over the cap")
        raw = response.raw
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                if time.monotonic() > call.deadline:
                    raise UpstreamTimeout(f"{endpoint}: body not complete in time")
                chunk = raw.read1(_CHUNK, decode_content=True)
                if not chunk:
                    break
                size += len(chunk)
                if size > limit:
                    raise BadResponse(f"{endpoint}: body over {limit} bytes")
                chunks.append(chunk)
        except requests.exceptions.ContentDecodingError as exc:
            raise BadResponse(f"{endpoint}: body could not be decoded") from exc
        except AIRiskError:
            raise
        except Exception as exc:  # urllib3 protocol, timeout and decode errors
            name = type(exc).__name__
            if call.expired or "Timeout" in name:
                raise UpstreamTimeout(f"{endpoint}: read timed out") from exc
            raise BadResponse(f"{endpoint}: body incomplete ({name})") from exc
        if call.expired:
            # A body without a length ends when the socket does, and the
            # watchdog just ended it: what arrived is not the whole body.
            raise UpstreamTimeout(f"{endpoint}: body not complete in time")
        return b"".join(chunks)


def _code_from_location(
    location: str, redirect_uri: str, state: str
) -> AuthorizationCode:
    """Read ``code`` and ``state`` from an authorize redirect and check them.

    :raises OAuthFailed: and its subclasses, for anything but our own code.
    """
    target, expected = urlsplit(location), urlsplit(redirect_uri)
    if not location:
        raise OAuthFailed("oauth2: redirect has no Location")
    if (target.scheme, target.netloc, target.path) != (
        expected.scheme,
        expected.netloc,
        expected.path,
    ):
        # E.g. AIRisk's own sign-in page: it wants a person, not a server.
        raise OAuthFailed("oauth2: redirected elsewhere than the redirect URI")
    query = parse_qs(target.query, keep_blank_values=True)
    if "error" in query:
        code = query["error"][0]
        shown = code if _OAUTH_ERROR_CODE.fullmatch(code) else "unrecognised"
        raise AuthorizationDenied(f"oauth2: redirect carries error={shown}")
    if query.get("state", [None])[0] != state:
        raise StateMismatch("oauth2: redirect carries another state")
    code = query.get("code", [""])[0]
    if not code:
        raise OAuthFailed("oauth2: redirect has no code")
    return AuthorizationCode(code, state)


def _decode(endpoint: str, body: bytes) -> Any:
    """Decode a JSON body: msgspec first (fast), the stdlib for the odd rest.

    msgspec refuses NaN/Infinity and lone surrogate escapes, which AIRisk
    might still send; the stdlib decoder then reads them (NaN as missing, the
    surrogate for the parser to replace) instead of failing the page.

    An empty body (or a 204) decodes as None, like ``null``.

    :raises BadResponse: if the body is not JSON at all.
    """
    if not body.strip():
        return None
    try:
        return msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):
        pass
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise BadResponse(f"{endpoint}: body is not JSON") from exc


def _reject_constant(name: str) -> None:
    # NaN and Infinity are not JSON; treat them as missing values.
    return None


def _header_int(value: str | None) -> int | None:
    """Return a header's value as a non-negative integer, or None.

    ``str.isdigit()`` alone is true for "³" (which ``int()`` refuses) and for
    other scripts' digits, and ``int()`` refuses more than 4300 digits: an
    upstream header must never turn into a 500.
    """
    text = (value or "").strip()
    if not (text.isascii() and text.isdigit()):
        return None
    # Past 18 digits the number is over any cap or limit anyway.
    return int(text) if len(text) <= 18 else sys.maxsize


def _retry_after(value: str | None) -> int | None:
    """Return Retry-After in seconds, from delta-seconds or an HTTP-date."""
    if not value:
        return None
    seconds = _header_int(value)
    if seconds is None:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = max(0, int((when - datetime.now(UTC)).total_seconds()))
    return min(seconds, _MAX_RETRY_AFTER)


def _is_timeout(exc: requests.RequestException) -> bool:
    """Return whether ``exc`` is a timeout, also when retries wrapped it.

    With a Retry mounted, urllib3 reports a read timeout it will not retry as
    ``MaxRetryError(reason=ReadTimeoutError)``, which requests raises as a
    ConnectionError, not a Timeout.
    """
    if isinstance(exc, requests.Timeout):
        return True
    reason = getattr(exc.args[0] if exc.args else None, "reason", None)
    return isinstance(reason, ReadTimeoutError)
