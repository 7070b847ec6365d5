"""Long AIRisk reads (whole-history scans, attachment checks) run as shared jobs.

A job runs in a thread of its own and the requests that want its result
*follow* it, so identical concurrent requests of one token cost the calls of
one job (single-flight). A job stops between two AIRisk calls when the last
request following it has gone (its client hung up), when it is stopped on
purpose ("Stop"), or when its token signs out; a job cancelled by sign-out
writes nothing. Each token may run a few jobs at once in a process; one more
is refused with :class:`ScansBusy` (429).
"""

from __future__ import annotations

import contextvars
import copy
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .errors import AIRiskError, BadResponse
from .models import ConversationSummary

log = logging.getLogger(__name__)

R = TypeVar("R")

#: What a job's name looks like (``secrets.token_urlsafe(12)``).
JOB_ID = re.compile(r"[A-Za-z0-9_-]{16}")

#: Seconds between two progress steps when AIRisk is slow to answer: a
#: streamed page shows the scan is alive (and notices a gone client) this often.
HEARTBEAT = 1.0


@dataclass(frozen=True, slots=True)
class ScanProgress:
    """How far a job has come; ``history`` is set when a scan is done.

    For a scan, ``pages`` is the AIRisk pages read and ``conversations`` the
    conversations seen; for an attachment check they are the conversations
    checked and the candidates. ``new_rows`` are the rows found since the
    previous step (on the first step a follower sees: all found so far).
    """

    pages: int
    conversations: int
    new_rows: tuple[ConversationSummary, ...]
    history: Any = None
    seconds: int = 0


class ScansBusy(Exception):
    """This token already runs as many scans as it may at once (a 429 page)."""

    status = 429
    title = "Too many searches at once"

    def __init__(self, limit: int) -> None:
        self.message = (
            f"Your access token already has {limit} searches or insights "
            f"reading the whole history at once, the most allowed. Wait for "
            f"one to finish (or stop it), then reload this page."
        )
        super().__init__(self.message)


class ClientGone(Exception):
    """The client of a request following a job hung up: nobody is waiting."""


class Stopped(Exception):
    """Raised by :meth:`Job.check` inside a job's body: stop reading now."""


class Job(Generic[R]):
    """One long read in a thread of its own, followed by any number of requests."""

    def __init__(
        self,
        key: str,
        owner: str,
        body: Callable[[Job[R]], R],
        should_stop: Callable[[Job[R]], bool],
    ) -> None:
        self.key = key
        self.owner = owner  # the token's cache key: never the token itself
        #: Names the job in "Stop" links; unguessable, so no other page can stop it.
        self.id = secrets.token_urlsafe(12)
        self.started = time.time()
        self._clock = time.monotonic()
        self._body = body
        self._should_stop = should_stop
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self.cancelled = False
        self.done = False
        self.result: R | None = None
        self.error: AIRiskError | None = None
        self.pages = 0
        self.total = 0
        self.rows: list[ConversationSummary] = []
        self._version = 0
        self._followers = 0

    # -- inside the job's thread ------------------------------------------------

    def check(self) -> None:
        """Raise :class:`Stopped` if the job should stop before its next call."""
        if self._stop.is_set() or self._should_stop(self):
            raise Stopped

    def publish(
        self, pages: int, total: int, new_rows: tuple[ConversationSummary, ...] = ()
    ) -> None:
        """Record progress and wake the followers."""
        with self._cond:
            self.pages, self.total = pages, total
            self.rows.extend(new_rows)
            self._version += 1
            self._cond.notify_all()

    def run(self) -> None:
        """Run the body and record its result or error (the thread's target)."""
        result: R | None = None
        error: AIRiskError | None = None
        try:
            result = self._body(self)
        except AIRiskError as exc:
            error = exc
        except Exception:
            log.exception("A background scan failed unexpectedly")
            error = BadResponse("background scan failed unexpectedly")
        with self._cond:
            self.result, self.error, self.done = result, error, True
            self._version += 1
            self._cond.notify_all()

    # -- from requests ------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        """Return whether the job was told to stop (it may still be finishing)."""
        return self._stop.is_set()

    def stop(self) -> None:
        """Ask the job to stop before its next AIRisk call."""
        self._stop.set()

    def cancel(self) -> None:
        """Stop the job and make it write nothing (its token signed out)."""
        self.cancelled = True
        self._stop.set()

    def follow(self, gone: Callable[[], bool] | None = None) -> Iterator[ScanProgress]:
        """Yield progress until the job is done; the last step carries the result.

        A step comes after each published page, or every :data:`HEARTBEAT`
        seconds while there is none. ``gone`` is asked between steps; when the
        last follower leaves (or its client is gone) the job stops.

        :raises ClientGone: when ``gone()`` says the client hung up.
        :raises AIRiskError: a copy of the job's failure, if it failed.
        """
        with self._cond:
            self._followers += 1
        seen_rows = seen_pages = 0
        seen_version = -1
        try:
            while True:
                with self._cond:
                    if self._version == seen_version and not self.done:
                        self._cond.wait(timeout=HEARTBEAT)
                    seen_version = self._version
                    new = tuple(self.rows[seen_rows:])
                    seen_rows += len(new)
                    done, error = self.done, self.error
                    step = ScanProgress(
                        self.pages,
                        self.total,
                        new,
                        self.result if done else None,
                        int(time.monotonic() - self._clock),
                    )
                if error is not None:
                    if new or step.pages != seen_pages:
                        # Show the progress made before the failure first.
                        seen_pages = step.pages
                        yield step
                        continue
                    # Each follower raises its own copy: one exception object
                    # re-raised in many threads would share one traceback.
                    raise copy.copy(error) from None
                seen_pages = step.pages
                yield step
                if done:
                    return
                if gone is not None and gone():
                    raise ClientGone
        finally:
            with self._cond:
                self._followers -= 1
                if not self._followers and not self.done:
                    self._stop.set()

    def wait_done(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the job to end; return whether it did."""
        with self._cond:
            return self._cond.wait_for(lambda: self.done, timeout=timeout)

    def wait(self, gone: Callable[[], bool] | None = None) -> R | None:
        """Follow the job to its end and return its result.

        :raises ClientGone: when ``gone()`` says the client hung up.
        :raises AIRiskError: a copy of the job's failure, if it failed.
        """
        for _ in self.follow(gone):
            pass
        return self.result


class Jobs:
    """The jobs running in this process, one per key, a few per token."""

    def __init__(self, per_token: int) -> None:
        self.per_token = per_token
        self._lock = threading.Lock()
        self._jobs: dict[str, Job[Any]] = {}

    def find(self, key: str) -> Job[Any] | None:
        """Return the job running under ``key`` (stopping or not), if any."""
        with self._lock:
            return self._jobs.get(key)

    def join_or_start(
        self,
        key: str,
        owner: str,
        body: Callable[[Job[R]], R],
        should_stop: Callable[[Job[R]], bool],
    ) -> Job[R]:
        """Return the job running under ``key``, or start one with ``body``.

        :raises ScansBusy: if ``owner`` already runs ``per_token`` jobs.
        """
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and not job.stopping:
                return job
            running = sum(1 for j in self._jobs.values() if j.owner == owner)
            if running >= self.per_token:
                raise ScansBusy(self.per_token)
            job = Job(key, owner, body, should_stop)
            self._jobs[key] = job
        # The job runs in a copy of the starting request's context, so its
        # calls count in that request's log line (upstream_calls).
        context = contextvars.copy_context()
        thread = threading.Thread(
            target=context.run,
            args=(self._run, job),
            name="airisk-scan",
            daemon=True,
        )
        thread.start()
        return job

    def _run(self, job: Job[Any]) -> None:
        try:
            job.run()
        finally:
            with self._lock:
                if self._jobs.get(job.key) is job:
                    del self._jobs[job.key]

    def by_id(self, owner: str, job_id: str) -> Job[Any] | None:
        """Return ``owner``'s running job named ``job_id``, if any."""
        with self._lock:
            for job in self._jobs.values():
                if job.owner == owner and secrets.compare_digest(
                    job.id.encode(), job_id.encode("utf-8", "surrogatepass")
                ):
                    return job
        return None

    def cancel(self, owner: str) -> None:
        """Cancel every job of ``owner`` (its token signed out)."""
        with self._lock:
            jobs = [j for j in self._jobs.values() if j.owner == owner]
        for job in jobs:
            job.cancel()

    def running(self) -> int:
        """Return how many jobs are running (tests wait for zero)."""
        with self._lock:
            return len(self._jobs)
