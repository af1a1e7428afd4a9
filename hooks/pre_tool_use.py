"""SENTINEL PreToolUse hook for Claude Code: judge, log, then allow (exit 0), warn (exit 0 + JSON) or block (exit 2).

Run as `/abs/path/.venv/bin/python -I -S /abs/path/hooks/pre_tool_use.py` (what `aistack hooks install` writes;
`-I -S` keep PYTHON* variables and site-packages out of a security hook and save ~15 ms of start-up) or
plainly as `/abs/path/.venv/bin/python /abs/path/hooks/pre_tool_use.py`, from any working directory.

Watchdog: this process forks at once. The child does all the work (services.sentinel.hookio.run_pre); this
parent only waits, importing nothing. If the child has not finished within 1 s (plus any approval wait the
child announces), the parent kills it, writes the block line and exits 2. A parent-side watchdog also stops
hangs inside C code (a regular expression backtracking, a huge `ast.parse`) that neither a SIGALRM handler
nor a timer thread could interrupt, since both need the child's interpreter to get back to bytecode.
Nothing on any path can end in exit code 1, which Claude Code takes as "go ahead".
"""

import os
import sys

DEADLINE = 1.0  # seconds; must match services.sentinel.hookio.DEADLINE


def _say(rule: str, reason: str, alternative: str) -> None:
    try:  # noqa: SIM105 - contextlib is not worth its import on the hook path
        os.write(2, f"SENTINEL blocked [{rule}]: {reason} {alternative}\n".encode("utf-8", "backslashreplace"))
    except OSError:
        pass


def _child(started: float, ctl: int) -> int:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
    from services.sentinel.hookio import run_pre

    return run_pre(started, ctl)


def _watch(pid: int, ctl: int, started: float) -> int:
    import select
    import time

    deadline = started + DEADLINE
    info: dict = {}
    buf = b""
    while True:
        left = deadline - time.monotonic()
        ready = select.select([ctl], [], [], left)[0] if left > 0 else []
        if not ready:
            return _expired(pid, started, info)
        chunk = os.read(ctl, 65536)
        if not chunk:
            break  # the child closed its end: it is exiting
        buf += chunk
        while b"\n" in buf:
            msg, buf = buf.split(b"\n", 1)
            if msg[:1] == b"W":  # the child waits for the admin: allow that long, plus the usual margin
                try:  # noqa: SIM105 - contextlib is not worth its import on the hook path
                    deadline = max(deadline, time.monotonic() + float(msg[1:]) + DEADLINE)
                except ValueError:
                    pass
            elif msg[:1] == b"I":  # what the call is about, for the audit line should the deadline hit
                import json

                try:
                    info = json.loads(msg[1:])
                except ValueError:
                    info = {}
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code in (0, 2):
        return code
    detail = f"internal error (the judge process ended with status {code})"
    _say("sentinel-internal-error", detail + ".",
         "The call stays blocked until SENTINEL is fixed; run `aistack doctor` and report the error.")
    _log(started, info, detail, "sentinel-internal-error")
    return 2


def _expired(pid: int, started: float, info: dict) -> int:
    import signal

    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except OSError:
        pass
    detail = f"SENTINEL could not judge this call within its {DEADLINE:g} s deadline"
    _say("sentinel-deadline", detail + ".", "Split the call into smaller, simpler steps and retry.")
    _log(started, info, detail, "sentinel-deadline")
    return 2


def _log(started: float, info: dict, detail: str, rule: str) -> None:
    """Log the block and spool its alert if that can be done quickly (0.5 s at most): the answer stands anyway."""
    import signal

    signal.signal(signal.SIGALRM, lambda *_: os._exit(2))
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    try:
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
        from services.sentinel.hookio import watchdog_block

        watchdog_block(started, info if isinstance(info, dict) else {}, detail, rule)
    except BaseException:
        pass
    signal.setitimer(signal.ITIMER_REAL, 0)


def main() -> None:
    code = 2
    try:
        import time

        started = time.monotonic()
        ctl_r, ctl_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 2
            try:
                os.close(ctl_r)
                code = _child(started, ctl_w)
            except BaseException as exc:
                _say("sentinel-internal-error", f"internal error ({type(exc).__name__}: {exc}).".replace("\n", " "),
                     "The call stays blocked until SENTINEL is fixed; run `aistack doctor` and report the error.")
                code = 2
            finally:
                os._exit(code if code in (0, 2) else 2)
        os.close(ctl_w)
        code = _watch(pid, ctl_r, started)
    except BaseException as exc:
        _say("sentinel-internal-error", f"internal error ({type(exc).__name__}: {exc}).".replace("\n", " "),
             "The call stays blocked until SENTINEL is fixed; run `aistack doctor` and report the error.")
        code = 2
    finally:
        os._exit(code if code in (0, 2) else 2)


if __name__ == "__main__":
    main()
