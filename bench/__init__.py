"""Benchmarks of the dashboard against its physical floor (``make bench``).

``python -m bench.run`` starts the demo AIRisk API in its own process, the
dashboard and a bare Flask route under gunicorn, and measures them side by side
in one run. Results go to ``build/bench/``; docs/benchmarks.md explains them.
"""
