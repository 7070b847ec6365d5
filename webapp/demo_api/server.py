"""Serve a WSGI app on loopback, in the background or in the foreground."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import TYPE_CHECKING

from werkzeug.serving import BaseWSGIServer, make_server

from . import DEFAULT_CLIENT, DEMO_TOKENS, create_demo_app

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

# socketserver checks for shutdown once per poll; short polls make stop() quick.
_POLL_INTERVAL = 0.05


class DemoServer:
    """Run a WSGI app with werkzeug in a daemon thread (port 0: a free port).

    Generic on purpose: end-to-end tests also serve the dashboard with it.
    """

    def __init__(
        self, app: WSGIApplication, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Return the base URL, e.g. ``http://127.0.0.1:54321``."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> DemoServer:
        """Bind the socket and start serving in a background thread.

        :raises RuntimeError: if the server is already running.
        :raises OSError: if the address cannot be bound.
        """
        if self._server is not None:
            raise RuntimeError("server already started")
        server = make_server(self.host, self.port, self.app, threaded=True)
        self._server = server
        self.port = server.server_port
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": _POLL_INTERVAL},
            name=f"DemoServer-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the socket and wait for the thread to end."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> DemoServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve_demo_api(
    host: str = "127.0.0.1",
    port: int = 5001,
    latency_ms: int = 0,
    max_results: int | None = None,
) -> None:
    """Serve the demo API in the foreground until interrupted with Ctrl-C.

    :raises OSError: if the address cannot be bound.
    """
    app = create_demo_app(latency_ms=latency_ms, max_results=max_results)
    server = make_server(host, port, app, threaded=True)
    print(f"Demo AIRisk API on http://{host}:{server.server_port}/api", flush=True)
    print("Tokens (send as 'Authorization: Bearer <token>'):")
    width = max(len(token) for token in DEMO_TOKENS)
    for token, description in DEMO_TOKENS.items():
        print(f"  {token:<{width}}  {description}")
    # A demo client with a published secret: printing it is the point here.
    print("OAuth2 API client (GET /api/oauth2, POST /api/oauth2/Token):")
    print(f"  client_id      {DEFAULT_CLIENT.client_id}")
    print(f"  client_secret  {DEFAULT_CLIENT.client_secret}")
    print(f"  redirect URIs  {', '.join(DEFAULT_CLIENT.redirect_uris)}")
    print("Press Ctrl-C to stop.", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
