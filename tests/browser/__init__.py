"""In-browser tests: Playwright driving Debian's Chromium against the dashboard.

A package (not a plain folder) so that its ``conftest.py`` does not replace the
top-level ``conftest`` module that other test modules import helpers from.
"""
