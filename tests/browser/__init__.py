"""In-browser tests: Playwright driving Debian's Chromium against the dashboard.

A package (not a plain folder), so its ``conftest.py`` and ``harness.py``
are imported as ``browser.*`` and never shadow a top-level module.
"""
