"""A real, misbehaving HTTP server on loopback, for tests of the AIRisk client.

``responses`` fakes AIRisk above the socket, so it cannot drip bytes, reset a
connection or send a header line that never ends. This server writes raw bytes
to a real socket. Behaviour is chosen per test with ``mode``: a name from
:data:`MODES` or any callable ``handler(connection, request)``.

Every request is recorded (method, target, headers) and every accepted TCP
connection is counted, so tests can prove how often the client called, and
that it never called at all. ``stop()`` closes every connection the server
holds open, so a test never hangs on a handler that drips forever.
"""

from __future__ import annotations

import json
import socket
import socketserver
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

#: Seconds between two bytes of a dripping response.
DRIP_INTERVAL = 0.5
#: Size of the "huge" bodies: 100 MB, streamed, never built in memory.
HUGE_BODY = 100 * 1024 * 1024
#: Decompressed size of the gzip bomb: 1 GiB of JSON whitespace.
BOMB_SIZE = 1024 * 1024 * 1024

_POLL_INTERVAL = 0.05
_MAX_REQUEST_HEAD = 64 * 1024
_STREAM_BLOCK = 256 * 1024


@dataclass(frozen=True)
class Request:
    """One request as the server received it."""

    method: str
    target: str
    headers: dict[str, str]

    @property
    def path(self) -> str:
        """Return the path without the query string."""
        return urlsplit(self.target).path

    @property
    def query(self) -> str:
        """Return the raw query string."""
        return urlsplit(self.target).query


class Connection:
    """The raw socket of one accepted connection, as a handler sees it."""

    def __init__(self, sock: socket.socket, stopping: threading.Event) -> None:
        self.sock = sock
        self.stopping = stopping
        self.keep_alive = False

    def send(self, data: bytes) -> bool:
        """Send ``data``; return False once the peer or the server has gone."""
        if self.stopping.is_set():
            return False
        try:
            self.sock.sendall(data)
        except OSError:
            return False
        return True

    def sleep(self, seconds: float) -> bool:
        """Wait ``seconds``; return False if the server stops meanwhile."""
        return not self.stopping.wait(seconds)

    def drip(self, data: bytes | Iterator[bytes], interval: float) -> None:
        """Send one byte every ``interval`` seconds until done or stopped."""
        for chunk in [data] if isinstance(data, bytes) else data:
            for i in range(len(chunk)):
                if not self.send(chunk[i : i + 1]) or not self.sleep(interval):
                    return

    def wait_for_close(self) -> None:
        """Hold the connection open, answering nothing, until either side ends."""
        self.sock.settimeout(_POLL_INTERVAL)
        while not self.stopping.is_set():
            try:
                if not self.sock.recv(4096):
                    return
            except TimeoutError:
                continue
            except OSError:
                return

    def reset(self) -> None:
        """Abort the connection with a TCP RST instead of a clean FIN."""
        try:
            self.sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            self.sock.close()
        except OSError:
            pass


Handler = Callable[[Connection, Request], None]


# -- building responses ---------------------------------------------------------

_REASONS = {
    200: "OK",
    302: "Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def head(
    status: int = 200,
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
    *,
    close: bool = True,
) -> bytes:
    """Return a status line and header block; values are sent as Latin-1."""
    items = list(headers.items()) if isinstance(headers, dict) else headers or []
    if close:
        items.append(("Connection", "close"))
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Whatever')}"]
    lines += [f"{name}: {value}" for name, value in items]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def respond(
    status: int = 200,
    body: bytes | str = b"",
    headers: dict[str, str] | None = None,
    *,
    content_type: str = "application/json",
    keep_alive: bool = False,
) -> Handler:
    """Return a handler that answers every request with one complete response."""
    data = body.encode() if isinstance(body, str) else body
    fields = {"Content-Type": content_type, "Content-Length": str(len(data))}
    fields.update(headers or {})

    def handler(conn: Connection, request: Request) -> None:
        conn.keep_alive = keep_alive
        conn.send(head(status, fields, close=not keep_alive) + data)

    return handler


def json_handler(payload: Any, status: int = 200) -> Handler:
    """Return a keep-alive handler answering ``payload`` as JSON."""
    return respond(status, json.dumps(payload), keep_alive=True)


# -- the healthy API ---------------------------------------------------------------

CONVERSATION: dict[str, Any] = {
    "id": "c1",
    "userID": "u1",
    "botID": "a1",
    "title": "Expense policy",
    "createdDate": "2026-11-27T09:00:00Z",
    "lastUpdated": "2026-11-28T10:00:00Z",
    "metaData": ["finance"],
    "messages": [
        {"id": "m1", "messageType": "User", "text": "How much can I expense?"},
        {"id": "m2", "messageType": "AI", "text": "Up to 50 per day."},
    ],
}
AGENTS = [{"id": "a1", "name": "Finance bot", "description": "Answers policy."}]


def healthy(conn: Connection, request: Request) -> None:
    """Answer like a well-behaved AIRisk, keeping the connection alive."""
    if request.path == "/api/Chat/ListAgents":
        payload: Any = AGENTS
    elif request.path.startswith("/api/Chat/GetConversation/"):
        payload = dict(CONVERSATION, id=request.path.rsplit("/", 1)[1])
    elif request.path == "/api/Chat/GetConversations":
        payload = [dict(CONVERSATION, messages=[])]
    else:
        respond(404, "{}", keep_alive=True)(conn, request)
        return
    json_handler(payload)(conn, request)


def is_token_check(request: Request) -> bool:
    """Return whether ``request`` is the dashboard's token check (one row)."""
    return request.path == "/api/Chat/GetConversations" and "results=1&" in (
        request.query + "&"
    )


# -- misbehaviour ----------------------------------------------------------------


def silent(conn: Connection, request: Request) -> None:
    """Accept the request and never answer."""
    conn.wait_for_close()


def _endless_json() -> Iterator[bytes]:
    yield b'[{"id": "c1", "title": "'
    while True:
        yield b"a" * 1024


def drip_body(conn: Connection, request: Request) -> None:
    """Send headers at once, then the body one byte at a time, forever.

    Content-Length (1 MB) is under the dashboard's size cap, so only a total
    deadline can end the call: the read timeout never fires.
    """
    conn.send(
        head(200, {"Content-Type": "application/json", "Content-Length": "1000000"})
    )
    conn.drip(_endless_json(), DRIP_INTERVAL)


def drip_body_over_cap(conn: Connection, request: Request) -> None:
    """Drip a body that announces 1 TB: the size cap should refuse it at once."""
    conn.send(
        head(200, {"Content-Type": "application/json", "Content-Length": str(2**40)})
    )
    conn.drip(_endless_json(), DRIP_INTERVAL)


def drip_chunked(conn: Connection, request: Request) -> None:
    """Send a chunked body one byte at a time, chunk-size lines included."""
    conn.send(
        head(200, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    )

    def chunks() -> Iterator[bytes]:
        for piece in _endless_json():
            yield b"%x\r\n%s\r\n" % (len(piece), piece)

    conn.drip(chunks(), DRIP_INTERVAL)


def drip_chunk_size(conn: Connection, request: Request) -> None:
    """Start a chunked body whose first chunk-size line never ends."""
    conn.send(
        head(200, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    )
    conn.drip(iter(lambda: b"0" * 64, b""), DRIP_INTERVAL)


def drip_headers(conn: Connection, request: Request) -> None:
    """Send the status line, then one header line that never ends, byte by byte."""
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
    conn.drip(iter(lambda: b"X-Slow: " + b"a" * 64 + b"\r\n", b""), DRIP_INTERVAL)


def drip_error_body(code: int = 503) -> Handler:
    """Return a handler that answers ``code`` and drips its body forever.

    A retry policy drains an error body before it retries, so this is the
    read-timeout trap again, one layer down.
    """

    def handler(conn: Connection, request: Request) -> None:
        conn.send(
            head(code, {"Content-Type": "text/plain", "Content-Length": "100000"})
        )
        conn.drip(iter(lambda: b"busy " * 8, b""), DRIP_INTERVAL)

    return handler


def html_login(conn: Connection, request: Request) -> None:
    """Answer 200 with an HTML sign-in page, as a misrouted proxy or SSO would."""
    page = (
        "<!doctype html><html><head><title>Sign in</title></head><body>"
        "<form method=post action=/login><input name=user><input name=password "
        "type=password><button>Sign in</button></form></body></html>"
    )
    respond(200, page, content_type="text/html; charset=utf-8")(conn, request)


def truncated_json(conn: Connection, request: Request) -> None:
    """Announce 10,000 bytes, send the first part of the JSON, then close."""
    body = json.dumps(CONVERSATION).encode()[:100]
    conn.send(
        head(200, {"Content-Type": "application/json", "Content-Length": "10000"})
        + body
    )


def wrong_shape(conn: Connection, request: Request) -> None:
    """Answer valid JSON of the wrong type: an array for one object and back."""
    if request.path.startswith("/api/Chat/GetConversation/"):
        payload: Any = [CONVERSATION]
    else:
        payload = {"items": [CONVERSATION], "total": 1}
    respond(200, json.dumps(payload))(conn, request)


def _huge_json() -> Iterator[bytes]:
    # "[" then spaces (valid JSON whitespace) then "]": a body that would parse.
    block = b" " * _STREAM_BLOCK
    yield b"["
    sent = 2
    while sent + len(block) <= HUGE_BODY:
        yield block
        sent += len(block)
    yield b" " * (HUGE_BODY - sent)
    yield b"]"


def _stream(conn: Connection, blocks: Iterator[bytes]) -> None:
    for block in blocks:
        if not conn.send(block):
            return


def huge_body(conn: Connection, request: Request) -> None:
    """Stream a 100 MB body with its Content-Length."""
    conn.send(
        head(
            200, {"Content-Type": "application/json", "Content-Length": str(HUGE_BODY)}
        )
    )
    _stream(conn, _huge_json())


def huge_body_unsized(conn: Connection, request: Request) -> None:
    """Stream a 100 MB body without Content-Length (ends when the server closes)."""
    conn.send(head(200, {"Content-Type": "application/json"}))
    _stream(conn, _huge_json())


def huge_body_chunked(conn: Connection, request: Request) -> None:
    """Stream a 100 MB chunked body."""
    conn.send(
        head(200, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    )
    _stream(conn, (b"%x\r\n%s\r\n" % (len(b), b) for b in _huge_json()))


def gzip_bomb_blocks(size: int = BOMB_SIZE) -> Iterator[bytes]:
    """Yield one gzip member of ``[`` + ``size`` spaces + ``]``, compressed lazily.

    Compressing the whole GiB up front takes seconds; compressing as the client
    reads costs only what the client accepts before it gives up.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b" " * (1024 * 1024)
    yield compressor.compress(b"[")
    for _ in range(size // len(block)):
        data = compressor.compress(block)
        if data:
            yield data
    yield compressor.compress(b"]") + compressor.flush()


def gzip_bomb(conn: Connection, request: Request) -> None:
    """Send about 1 MB of gzip that inflates to 1 GiB of JSON."""
    conn.send(
        head(200, {"Content-Type": "application/json", "Content-Encoding": "gzip"})
    )
    _stream(conn, gzip_bomb_blocks())


def redirect_to(location: str, status: int = 302) -> Handler:
    """Return a handler that redirects every request to ``location``."""
    return respond(status, "", {"Location": location})


def status(code: int, retry_after: str | None = None, body: str = "{}") -> Handler:
    """Return a handler answering ``code``, with ``Retry-After`` when given."""
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    return respond(code, body, headers)


def surrogates(conn: Connection, request: Request) -> None:
    """Answer valid-looking JSON with lone surrogates, NaN and Infinity."""
    if request.path == "/api/Chat/ListAgents":
        body = '[{"id": "a1", "name": "Bot \\ud800", "description": NaN}]'
    elif request.path.startswith("/api/Chat/GetConversation/"):
        body = (
            '{"id": "c1", "botID": "a1", "title": "Lone \\ud800 title",'
            ' "totalTokens": NaN, "currentCost": Infinity, "promptTokens": -Infinity,'
            ' "messages": [{"id": "m1", "messageType": "AI",'
            ' "text": "broken \\udfff text"}]}'
        )
    else:
        body = '[{"id": "c1", "title": "Lone \\ud800 title", "currentCost": NaN}]'
    respond(200, body)(conn, request)


#: Dates a .NET AIRisk can send that Python cannot hold in UTC (or only just).
OUT_OF_RANGE_DATES = (
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:59:59-05:00",
    "0001-01-01T00:00:00",
    "9999-12-31T23:59:59.9999999Z",
)


def _dated(index: int, created: str, updated: str) -> dict[str, Any]:
    return dict(
        CONVERSATION,
        id=f"d{index}",
        title=f"Dated {index}",
        createdDate=created,
        lastUpdated=updated,
        hasFlag=True,
        totalTokens=100,
        currentCost=0.5,
    )


#: Every out-of-range date as a created and as a last-updated date.
DATED = [
    _dated(index, created, updated)
    for index, (created, updated) in enumerate(
        zip(OUT_OF_RANGE_DATES, reversed(OUT_OF_RANGE_DATES), strict=True)
    )
] + [_dated(9, "2026-11-27T09:00:00Z", "2026-11-28T10:00:00Z")]


def out_of_range_dates(conn: Connection, request: Request) -> None:
    """Answer like a healthy AIRisk whose dates lie outside datetime's range."""
    if request.path == "/api/Chat/ListAgents":
        payload: Any = AGENTS
    elif request.path.startswith("/api/Chat/GetConversation/"):
        wanted = request.path.rsplit("/", 1)[1]
        payload = next((c for c in DATED if c["id"] == wanted), DATED[0])
    elif request.path == "/api/Chat/GetConversations":
        skip = "skip=0" in request.query or "skip=" not in request.query
        payload = [dict(c, messages=[]) for c in DATED] if skip else []
    else:
        respond(404, "{}", keep_alive=True)(conn, request)
        return
    json_handler(payload)(conn, request)


def reset_mid_body(conn: Connection, request: Request) -> None:
    """Send headers and part of the body, then abort with a TCP RST."""
    body = json.dumps(CONVERSATION).encode()
    conn.send(
        head(200, {"Content-Type": "application/json", "Content-Length": "100000"})
        + body[:50]
    )
    conn.sleep(0.05)
    conn.reset()


MODES: dict[str, Handler] = {
    "healthy": healthy,
    "silent": silent,
    "drip_body": drip_body,
    "drip_body_over_cap": drip_body_over_cap,
    "drip_chunked": drip_chunked,
    "drip_chunk_size": drip_chunk_size,
    "drip_headers": drip_headers,
    "html_login": html_login,
    "truncated_json": truncated_json,
    "wrong_shape": wrong_shape,
    "huge_body": huge_body,
    "huge_body_unsized": huge_body_unsized,
    "huge_body_chunked": huge_body_chunked,
    "gzip_bomb": gzip_bomb,
    "surrogates": surrogates,
    "out_of_range_dates": out_of_range_dates,
    "reset_mid_body": reset_mid_body,
}


# -- the server ------------------------------------------------------------------


@dataclass
class _State:
    requests: list[Request] = field(default_factory=list)
    connections: int = 0
    open_sockets: set[socket.socket] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    # stop() closes the sockets itself; never wait for a dripping handler.
    block_on_close = False


class HostileServer:
    """Serve ``mode`` on a free loopback port in daemon threads.

    :param mode: a name from :data:`MODES` or a handler callable; can be
        changed while the server runs (``server.mode = "healthy"``).
    :param answer_token_check: answer the dashboard's one-row token check
        (``GetConversations?results=1``) healthily, so that signing in works
        and only the page under test meets the misbehaviour.
    """

    def __init__(
        self,
        mode: str | Handler = "healthy",
        *,
        host: str = "127.0.0.1",
        answer_token_check: bool = True,
    ) -> None:
        self.mode = mode
        self.host = host
        self.answer_token_check = answer_token_check
        self._state = _State()
        self._stopping = threading.Event()
        self._server: _TCPServer | None = None
        self._thread: threading.Thread | None = None

    # -- what happened ----------------------------------------------------------

    @property
    def requests(self) -> list[Request]:
        """Return every request received so far, in order."""
        with self._state.lock:
            return list(self._state.requests)

    @property
    def connections(self) -> int:
        """Return how many TCP connections were accepted."""
        with self._state.lock:
            return self._state.connections

    def requests_to(self, path_prefix: str) -> list[Request]:
        """Return the requests whose path starts with ``path_prefix``."""
        return [r for r in self.requests if r.path.startswith(path_prefix)]

    # -- life cycle -------------------------------------------------------------

    @property
    def port(self) -> int:
        """Return the bound port.

        :raises RuntimeError: if the server is not running.
        """
        if self._server is None:
            raise RuntimeError("server not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Return the base URL, e.g. ``http://127.0.0.1:54321``."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> HostileServer:
        """Bind a free port and serve in a background thread.

        :raises OSError: if the address cannot be bound.
        """
        if self._server is not None:
            raise RuntimeError("server already started")
        self._stopping.clear()
        self._server = _TCPServer((self.host, 0), self._handler_class())
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": _POLL_INTERVAL},
            name=f"HostileServer-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, close every open connection and the listener."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self._state.lock:
            sockets = list(self._state.open_sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- serving ----------------------------------------------------------------

    def _dispatch(self, request: Request) -> Handler:
        if self.answer_token_check and is_token_check(request):
            return json_handler([])
        mode = self.mode
        return MODES[mode] if isinstance(mode, str) else mode

    def _handler_class(self) -> type[socketserver.BaseRequestHandler]:
        outer = self

        class _Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                outer._serve_connection(self.request)

        return _Handler

    def _serve_connection(self, sock: socket.socket) -> None:
        state = self._state
        with state.lock:
            state.connections += 1
            state.open_sockets.add(sock)
        try:
            buffer = b""
            while not self._stopping.is_set():
                request, buffer = self._read_request(sock, buffer)
                if request is None:
                    return
                with state.lock:
                    state.requests.append(request)
                conn = Connection(sock, self._stopping)
                self._dispatch(request)(conn, request)
                if not conn.keep_alive:
                    return
        except OSError:
            return
        finally:
            with state.lock:
                state.open_sockets.discard(sock)

    def _read_request(
        self, sock: socket.socket, buffer: bytes
    ) -> tuple[Request | None, bytes]:
        sock.settimeout(_POLL_INTERVAL)
        while b"\r\n\r\n" not in buffer:
            if self._stopping.is_set() or len(buffer) > _MAX_REQUEST_HEAD:
                return None, b""
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            if not data:
                return None, b""
            buffer += data
        sock.settimeout(None)
        raw, rest = buffer.split(b"\r\n\r\n", 1)
        lines = raw.decode("latin-1").split("\r\n")
        method, target, _ = (lines[0].split(" ", 2) + ["", ""])[:3]
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip()] = value.strip()
        # Requests from the dashboard are GETs without a body.
        return Request(method, target, headers), rest


def refused_url() -> str:
    """Return a loopback URL where nothing listens ("connection refused").

    The port was free a moment ago; closing without listening leaves it so.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def can_bind(host: str) -> bool:
    """Return whether this machine lets a test listen on ``host``."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
    except OSError:
        return False
    return True
