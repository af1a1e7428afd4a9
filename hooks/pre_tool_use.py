"""SENTINEL PreToolUse hook for Claude Code: judge, log, then allow (exit 0), warn (exit 0 + JSON) or block (exit 2).

Installed as `/abs/path/.venv/bin/python -I -S /abs/path/hooks/pre_tool_use.py` (`aistack hooks install`): `-I -S`
keep PYTHON* variables and site-packages out of a security hook and save ~15 ms of start-up. It also works as
plainly `/abs/path/.venv/bin/python /abs/path/hooks/pre_tool_use.py`, from any working directory.

This file arms the watchdog before anything else is imported (a 1 s SIGALRM timer whose handler writes the block
line and leaves with `os._exit(2)`; the regular-expression engine checks for signals, so even a catastrophically
backtracking pattern is cut off) and makes sure that nothing, not even an error while importing or a judge daemon
that died, can end in Python's default exit code 1, which Claude Code takes as "go ahead".

The call is judged by the warm judge daemon when one answers (services/sentinel/client.py, which imports only C
modules), else here by services.sentinel.hookio.run_pre. `SENTINEL_DAEMON=off` always judges here.
Keep this file small: a script is compiled on every run, modules are byte-compiled once.
"""

import posix  # not `os`: under `-I -S` nothing has imported it yet, and it would cost ~1.4 ms per call
import sys

DEADLINE = 1.0  # seconds; services.sentinel.hookio.DEADLINE is the same
ALT_DEADLINE = "Split the call into smaller, simpler steps and retry."
ALT_INTERNAL = "The call stays blocked until SENTINEL is fixed; run `aistack doctor` and report the error."


def _say(rule: str, reason: str, alternative: str) -> None:
    try:  # noqa: SIM105 - contextlib is not worth its import on the hook path
        posix.write(2, f"SENTINEL blocked [{rule}]: {reason} {alternative}\n".encode("utf-8", "backslashreplace"))
    except OSError:
        pass


def _expired(signum: int, frame: object) -> None:
    # Until hookio installs its own handler (which also logs the block), this one answers alone.
    _say("sentinel-deadline", f"SENTINEL could not judge this call within its {DEADLINE:g} s deadline.", ALT_DEADLINE)
    posix._exit(2)


def _root() -> str:
    """The checkout this script belongs to: two levels up from the script, symlinks resolved."""
    path = __file__ if __file__.startswith("/") else posix.getcwd() + "/" + __file__
    hooks, root = path.rsplit("/", 1)[0], path.rsplit("/", 2)[0]
    if "/./" not in path and "/../" not in path and not any(
            posix.lstat(p).st_mode & 0o170000 == 0o120000 for p in (path, hooks)):  # neither is a symlink
        try:
            posix.stat(root + "/services/sentinel/client.py")
            return root
        except OSError:
            pass
    import os

    return os.path.dirname(os.path.dirname(os.path.realpath(__file__)))


def main() -> None:
    code = 2
    try:
        import _signal  # the C module behind `signal`, which only adds enums (and ~0.7 ms)
        import time

        started = time.monotonic()
        _signal.signal(_signal.SIGALRM, _expired)
        _signal.setitimer(_signal.ITIMER_REAL, DEADLINE)
        sys.path.insert(0, _root())
        prefix = b""
        if posix.environ.get(b"SENTINEL_DAEMON", b"").strip().lower() not in (b"off", b"0", b"no", b"false"):
            from services.sentinel import client

            answer = client.ask(started)
            if not isinstance(answer, bytes):
                code, out, err = answer
                client.write_all(1, out)
                client.write_all(2, err)
                return
            prefix = answer
        from services.sentinel.hookio import run_pre

        code = run_pre(started, prefix)
        if code not in (0, 2):
            raise RuntimeError(f"the hook runtime answered exit code {code!r}")
    except BaseException as exc:  # anything at all, even an import error or a daemon that died, blocks
        _say("sentinel-internal-error", " ".join(f"internal error ({type(exc).__name__}: {exc}).".split()),
             ALT_INTERNAL)
        code = 2
    finally:
        posix._exit(code if code in (0, 2) else 2)


if __name__ == "__main__":
    main()
