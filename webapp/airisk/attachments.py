"""Which conversations have attachments: open each candidate, a few at a time.

Summaries do not say whether a conversation has files, so the "Has
attachments" filter opens each candidate. It runs inside a job (see
:mod:`.scans`): progress after each answer, a stop between calls, and never
more than :data:`IN_FLIGHT` calls to AIRisk at once.
"""

from __future__ import annotations

import contextvars
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from .client import AIRiskClient
from .errors import NotFound
from .models import ConversationSummary
from .scans import Job, Stopped

#: Conversations opened at once: a few, so a long list is checked faster
#: without flooding AIRisk.
IN_FLIGHT = 4


@dataclass(frozen=True, slots=True)
class FileCheck:
    """Which conversations have attachments, as far as checked."""

    files: dict[str, bool]
    checked: int
    candidates: int
    complete: bool


def check_files(
    job: Job[FileCheck],
    client: AIRiskClient,
    token: str,
    rows: list[ConversationSummary],
    found: dict[str, bool],
) -> None:
    """Open ``rows`` in turn, recording in ``found`` whether each has files.

    Stops quietly when the job is told to stop; ``found`` holds the answers
    so far either way (also when a call fails).

    :raises AIRiskError: a subclass for each kind of failure.
    """

    def has_files(row: ConversationSummary) -> tuple[ConversationSummary, bool]:
        try:
            conversation = client.get_conversation(token, row.id)
        except NotFound:
            return row, False
        return row, any(m.file_name or m.file_url for m in conversation.messages)

    todo = iter(rows)
    in_flight: set[Future[tuple[ConversationSummary, bool]]] = set()
    pool = ThreadPoolExecutor(IN_FLIGHT, "airisk-files")
    try:
        while True:
            # Keep at most IN_FLIGHT calls going, never more.
            while len(in_flight) < IN_FLIGHT:
                row = next(todo, None)
                if row is None:
                    break
                job.check()
                # Each call in a copy of the job's context: counted in the
                # starting request's log line like a scan's calls.
                context = contextvars.copy_context()
                in_flight.add(pool.submit(context.run, has_files, row))
            if not in_flight:
                break
            finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
            matches = []
            for future in finished:
                row, files = future.result()
                found[row.id] = files
                if files:
                    matches.append(row)
            job.publish(len(found), len(rows), tuple(matches))
    except Stopped:
        pass
    finally:
        for future in in_flight:
            future.cancel()
        pool.shutdown(wait=True)
