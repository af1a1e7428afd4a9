"""SENTINEL PostToolUse hook for Claude Code: log the call's outcome (success, error, duration). Always exits 0.

Run like the pre hook: `/abs/path/.venv/bin/python -I -S /abs/path/hooks/post_tool_use.py`, from any directory.
Nothing here can stop or slow the agent for long: every error is swallowed and a 2 s alarm ends the process.
"""

import os
import sys

LIMIT = 2.0  # seconds


def main() -> None:
    try:
        import _signal  # the C module behind `signal`, which only adds enums (and ~0.7 ms)
        import time

        started = time.monotonic()
        _signal.signal(_signal.SIGALRM, lambda *_: os._exit(0))
        _signal.setitimer(_signal.ITIMER_REAL, LIMIT)
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
        from services.sentinel.hookio import run_post

        run_post(started)
    except BaseException:
        pass
    finally:
        os._exit(0)


if __name__ == "__main__":
    main()
