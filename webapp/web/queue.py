"""The review queue (``/review``): placeholder until the queue lands."""

from __future__ import annotations

from typing import Any

from flask import render_template


def queue_page() -> Any:
    """Render the review queue."""
    return render_template("reviews/queue.html", rows=[])
