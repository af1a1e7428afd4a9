"""wsl-audit: host health checks (memory, swap, disk, WSL, Docker, processes), alerting and the event log.

Stdlib on the one-shot path (a whole `wsl-audit` run must take ≤ 300 ms): no pydantic, no SQLAlchemy, and the
`docker` SDK only when a Docker endpoint exists. See docs/ARCHITECTURE.md, section wsl-audit.
"""
