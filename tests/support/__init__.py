"""Shared test helpers, in one place; ``conftest.py`` keeps only fixtures.

Test files import from here, never from ``conftest.py`` or from each other.
"""

from .app import ALICE, BASE, DEMO_NOW, csrf_token, enter_token, make_app
from .demo import Counting
from .html import Page, page
from .http import Browser, signed_in_reviewer

__all__ = [
    "ALICE",
    "BASE",
    "DEMO_NOW",
    "Browser",
    "Counting",
    "Page",
    "csrf_token",
    "enter_token",
    "make_app",
    "page",
    "signed_in_reviewer",
]
