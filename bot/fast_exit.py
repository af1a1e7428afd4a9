"""Leave a short command without the interpreter's module teardown.

With pydantic, SQLAlchemy and rich (or the docker SDK) loaded, tearing the modules down costs up to ~0.4 s on these
machines, a third of a short command's wall time. Exit handlers still run (logging, pools, temp dirs) and output is
flushed; only module finalization is skipped, and nothing of ours relies on it.
"""

from __future__ import annotations

import atexit
import os
import sys
from collections.abc import Callable
from typing import NoReturn


def run_and_exit(command: Callable[[], object]) -> NoReturn:
    """Run `command` (which may raise SystemExit, or return an exit code), then exit at once with its code."""
    code: object = 0
    try:
        code = command()
    except SystemExit as exc:
        code = exc.code
    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 0)
