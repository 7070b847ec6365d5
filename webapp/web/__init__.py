"""Pages: blueprints, and what only pages need (errors, headers, scans, logs)."""
