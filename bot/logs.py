"""Logging set-up: a rotating file in AISTACK_HOME/logs, and the console unless it is busy with a chat."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path


def setup_logging(home: Path, *, console: bool = True, level: int = logging.INFO) -> Path:
    logdir = home / "logs"
    logdir.mkdir(parents=True, exist_ok=True)
    path = logdir / "aistack.log"
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers: list[logging.Handler] = [
        logging.handlers.RotatingFileHandler(path, maxBytes=5_000_000, backupCount=3, encoding="utf-8")]
    if console:
        handlers.append(logging.StreamHandler())
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        h.setFormatter(fmt)
        root.addHandler(h)
    root.setLevel(level)
    # httpx logs every poll at INFO; that drowns the useful lines.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return path
