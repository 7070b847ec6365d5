"""The total deadline of an AIRisk call, enforced on its sockets.

A socket timeout bounds each read, not a call: a server that drips a header
line or a chunk-size line one byte a second keeps one read of http.client
going forever, and urllib3 drains a dripping error body the same way before it
retries. :class:`Watchdog` (one daemon thread for every call) shuts down the
sockets of a call that runs past its deadline; :class:`DeadlineAdapter` gives
requests connections that register their sockets with it.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

#: How often the watchdog re-cuts the sockets of a call past its deadline.
_RECHECK = 0.1


class Call:
    """One AIRisk call: its deadline and the sockets it has used."""

    __slots__ = ("deadline", "expired", "sockets")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.expired = False
        # Sockets, not connections: http.client drops ``connection.sock`` as
        # soon as a "Connection: close" response takes the socket over.
        self.sockets: list[socket.socket] = []


class Watchdog:
    """Cut the sockets of calls that run past their deadline.

    A socket timeout bounds each read, not a call: a server that drips a
    header line or a chunk-size line one byte a second keeps one read of
    http.client going forever, and urllib3 drains a dripping error body the
    same way before it retries. Only another thread can end such a read, so
    one daemon thread serves every call. ``shutdown`` (not ``close``) wakes
    the blocked reader, which then sees the end of the stream.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._calls: set[Call] = set()
        self._wake_at: float | None = None
        self._thread: threading.Thread | None = None
        self._local = threading.local()

    @contextmanager
    def watch(self, call: Call) -> Iterator[None]:
        """Enforce ``call.deadline`` on the connections this thread uses."""
        with self._cond:
            self._calls.add(call)
            # Started on first use, and again in a forked worker.
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="airisk-deadline", daemon=True
                )
                self._thread.start()
            elif self._wake_at is None or call.deadline < self._wake_at:
                self._cond.notify()
        self._local.call = call
        try:
            yield
        finally:
            self._local.call = None
            with self._cond:
                self._calls.discard(call)

    def check(self) -> None:
        """Refuse to open a connection for a call past its deadline.

        :raises TimeoutError: if this thread's call is late (a retry after it).
        """
        call: Call | None = getattr(self._local, "call", None)
        if call is not None and call.expired:
            raise TimeoutError("AIRisk call deadline passed")

    def attach(self, sock: socket.socket | None) -> None:
        """Put ``sock`` under the deadline of this thread's call, if any."""
        call: Call | None = getattr(self._local, "call", None)
        if call is None or sock is None:
            return
        with self._cond:
            if not any(known is sock for known in call.sockets):
                call.sockets.append(sock)
            if call.expired:
                _cut(sock)

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                late = False
                for call in self._calls:
                    if call.deadline <= now:
                        call.expired = late = True
                        for sock in call.sockets:
                            _cut(sock)
                # A late call stays listed until it ends, and its sockets are
                # cut again: one may have been connecting at the deadline.
                pending = [c.deadline for c in self._calls if not c.expired]
                wake = min(pending, default=None)
                if late:
                    wake = now + _RECHECK if wake is None else min(wake, now + _RECHECK)
                self._wake_at = wake
                self._cond.wait(None if wake is None else max(wake - now, 0.001))


def _cut(sock: Any) -> None:
    if isinstance(sock, socket.socket):
        try:
            # socket.socket's own shutdown: SSLSocket.shutdown would also drop
            # its TLS state from under the thread that is reading.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass  # already closed or never connected


WATCHDOG = Watchdog()


class _Watched:
    """Make a urllib3 connection's sockets obey the current call's deadline."""

    sock: socket.socket | None

    def _new_conn(self) -> socket.socket:
        # For HTTPS the TCP socket covers the TLS handshake too.
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        WATCHDOG.attach(sock)
        return sock

    def connect(self) -> None:
        WATCHDOG.check()
        super().connect()  # type: ignore[misc]
        WATCHDOG.attach(self.sock)  # TLS wraps the socket: watch the wrapper

    def request(self, *args: Any, **kwargs: Any) -> None:
        WATCHDOG.attach(self.sock)  # a kept-alive connection's socket
        super().request(*args, **kwargs)  # type: ignore[misc]


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    """An HTTP connection under the deadline."""


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    """An HTTPS connection under the deadline."""


class _WatchedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class DeadlineAdapter(HTTPAdapter):
    """A requests adapter whose connections obey :class:`Watchdog`."""

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **kwargs: Any
    ) -> None:
        """Create the pool manager with watched connection classes."""
        super().init_poolmanager(connections, maxsize, block, **kwargs)
        # PoolManager reads its pool classes from this per-instance mapping
        # so that subclasses and adapters can replace them.
        self.poolmanager.pool_classes_by_scheme = {
            "http": _WatchedHTTPConnectionPool,
            "https": _WatchedHTTPSConnectionPool,
        }
