"""The hook's client to the warm judge daemon (services/sentinel/daemon.py). Imports only C modules (`posix`,
`_socket`, `_signal`, `time`; `os` and `fcntl` only when it spawns a daemon): it runs on every tool call, in
`hooks/pre_tool_use.py`, and lives here rather than in that script so that it is byte-compiled once (compiling it
costs ~5 ms per call).

The client reads stdin and asks the daemon on `$AISTACK_HOME/sentinel/judge.sock`, because importing the judge
costs ~25-35 ms per tool call and the judging itself well under 1 ms. When no daemon answers the handshake (no
socket, refused, stale, declined, slow, not ours, garbage), it starts one in the background for the next call
and this call is judged in-process by services.sentinel.hookio.run_pre, exactly as before. `SENTINEL_DAEMON=off`
skips the daemon entirely (no use, no spawn).

Exactly one side judges and logs a call: the client falls back only before it has sent the request. Once the
request is out, anything but a well-formed answer (the daemon died, closed, sent garbage) blocks with
`sentinel-internal-error`; a daemon that hangs is cut off by the hook's watchdog (`sentinel-deadline`), which
waits GRACE longer than the daemon's own deadline so that the daemon's (logged) deadline block comes first.

Wire format (services/sentinel/daemon.py holds the other half; both check the magic):
    daemon → client   1 byte: b"S" serving (send the request) | anything else, or nothing: fall back
    client → daemon   b"SJ1" + u32 length + items, each u32 length + bytes:
                      started (repr of time.monotonic() at process start), cwd, stdin, then "NAME=value" for
                      every environment variable (the judge expands `$VARS` in paths, so it needs them all)
    daemon → client   b"W" + u32 + ascii seconds: the deadline moves (approval wait); repeatable
                      b"R" + u8 exit code + u32 + stdout + u32 + stderr: the answer
u32 = 4 bytes big-endian. Clock: CLOCK_MONOTONIC is system-wide, so `started` means the same in the daemon.
"""

import posix  # not `os`: under `-I -S` nothing has imported it yet, and it would cost ~1.4 ms per call
import sys

TYPE_CHECKING = False  # importing `typing` would cost the hook ~3 ms (mypy honours this flag)
if TYPE_CHECKING:
    import _socket

DEADLINE = 1.0  # seconds; services.sentinel.hookio.DEADLINE is the same
GRACE = 0.25  # the daemon's own deadline answer (which it logs) gets this long to arrive before ours
HELLO_TIMEOUT = 0.25  # seconds for connect + handshake; then this call is judged here
MAX_INPUT = 1 << 20  # services.sentinel.hookio.MAX_INPUT
MAGIC = b"SJ1"
ALT_DEADLINE = "Split the call into smaller, simpler steps and retry."
ALT_INTERNAL = "The call stays blocked until SENTINEL is fixed; run `aistack doctor` and report the error."


class Fallback(Exception):
    """The daemon cannot take this call (nothing was sent): judge it in this process."""


def _say(rule: str, reason: str, alternative: str) -> None:
    try:  # noqa: SIM105 - contextlib is not worth its import on the hook path
        posix.write(2, f"SENTINEL blocked [{rule}]: {reason} {alternative}\n".encode("utf-8", "backslashreplace"))
    except OSError:
        pass


def _expired(signum: int, frame: object) -> None:
    # Until hookio installs its own handler (which also logs the block), this one answers alone.
    _say("sentinel-deadline", f"SENTINEL could not judge this call within its {DEADLINE:g} s deadline.", ALT_DEADLINE)
    posix._exit(2)


def write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[posix.write(fd, data):]


def _u32(n: int) -> bytes:
    return n.to_bytes(4, "big")


def _env(name: str) -> str:
    return posix.environ.get(name.encode(), b"").decode("utf-8", "surrogateescape")  # as os.environ decodes


def sentinel_dir() -> str:
    """As services.sentinel.paths.sentinel_dir (which this file must not import): $AISTACK_HOME or the default,
    environment variables expanded first, then `~`, made absolute. Plain cases are done here without `os`."""
    home = _env("AISTACK_HOME").strip() or "~/.local/share/aistack"
    path = home
    if path == "~" or path.startswith("~/"):
        user_home = _env("HOME").rstrip("/")  # expanduser uses $HOME when it is set
        if user_home.startswith("/"):
            path = user_home + path[1:]
    if (path.startswith("/") and "$" not in home and "$" not in path and "//" not in path and "/./" not in path
            and "/../" not in path and not path.endswith(("/", "/.", "/.."))):
        return path + "/sentinel"  # already what expandvars, expanduser and abspath would make of it
    import os

    return os.path.join(os.path.abspath(os.path.expanduser(os.path.expandvars(home))), "sentinel")


def daemon_enabled() -> bool:
    return _env("SENTINEL_DAEMON").strip().lower() not in ("off", "0", "no", "false")


def read_input(limit: int = MAX_INPUT) -> tuple[bytes, bool]:
    """(stdin up to `limit` + 1 bytes, whether that is all of it). An oversized input is left to the
    in-process path, which hashes the whole of it for the log."""
    chunks: list[bytes] = []
    kept = 0
    while kept <= limit:
        chunk = posix.read(0, 1 << 16)
        if not chunk:
            return b"".join(chunks), True
        chunks.append(chunk)
        kept += len(chunk)
    return b"".join(chunks), False


def _recv_exact(sock: "_socket.socket", n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(n - len(buf), 1 << 16))
        if not chunk:
            raise ConnectionError("the daemon closed the connection mid-answer")
        buf += chunk
    return bytes(buf)


def ask_daemon(started: float, raw: bytes, path: str) -> tuple[int, bytes, bytes]:
    """The daemon's answer, or `Fallback` if it did not take the call. Any error after the request went out
    propagates (the caller blocks): the daemon may have judged and logged the call already."""
    import _socket

    try:
        cwd = posix.getcwdb()
    except OSError as exc:  # the working directory is gone; the in-process path reports it as it always did
        raise Fallback(str(exc)) from None
    try:
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    except OSError as exc:  # out of descriptors, say: nothing was sent
        raise Fallback(str(exc)) from None
    try:
        try:
            sock.settimeout(HELLO_TIMEOUT)
            sock.connect(path)
            cred = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)  # struct ucred: pid, uid, gid
            if int.from_bytes(cred[4:8], sys.byteorder) != posix.getuid():
                raise Fallback("the socket belongs to another user")
            if sock.recv(1) != b"S":
                raise Fallback("the daemon declined")
            items = [repr(started).encode(), cwd, raw]
            items += [k + b"=" + v for k, v in posix.environ.items()]
            body = b"".join(_u32(len(i)) + i for i in items)
            request = MAGIC + _u32(len(body)) + body
            sock.settimeout(None)  # from here on the watchdog bounds the wait
        except OSError as exc:
            raise Fallback(str(exc)) from None
        sock.sendall(request)
        # Sent: the daemon owns this call now. No more fallback.
        while True:
            kind = _recv_exact(sock, 1)
            if kind == b"W":
                wait = float(_recv_exact(sock, int.from_bytes(_recv_exact(sock, 4), "big")).decode("ascii"))
                _arm(started, wait)
            elif kind == b"R":
                code = _recv_exact(sock, 1)[0]
                out = _recv_exact(sock, int.from_bytes(_recv_exact(sock, 4), "big"))
                err = _recv_exact(sock, int.from_bytes(_recv_exact(sock, 4), "big"))
                if code not in (0, 2):
                    raise ValueError(f"the daemon answered exit code {code}")
                return code, out, err
            else:
                raise ValueError(f"the daemon sent {kind!r}")
    finally:
        sock.close()


def _arm(started: float, seconds: float) -> None:
    # As hookio's _Pre.arm: `seconds` from now or the rest of the first second, whichever is later; plus GRACE
    # so that the daemon, whose timer runs on the same clock, answers (and logs) its own deadline first.
    import _signal
    import time

    left = started + DEADLINE - time.monotonic()
    _signal.signal(_signal.SIGALRM, _expired)
    _signal.setitimer(_signal.ITIMER_REAL, max(seconds, left, 0.001) + GRACE)


def spawn_daemon(sdir: str) -> None:
    """Start a judge daemon in the background unless one holds `judge.lock` (no spawn storm). Best effort."""
    import fcntl
    import os

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

    try:
        fd = os.open(os.path.join(sdir, "judge.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        fd = -1  # no state directory yet: the daemon creates it
    if fd >= 0:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return  # a daemon is alive (maybe stale and on its way out) or starting
        finally:
            os.close(fd)  # the daemon takes the lock itself; a second one that loses the race just exits
    pid = os.fork()
    if pid:
        os.waitpid(pid, 0)  # the intermediate child exits at once
        return
    try:  # intermediate child: new session, fork again so the daemon is nobody's child and has no terminal
        os.setsid()
        if os.fork():
            os._exit(0)
        null = os.open(os.devnull, os.O_RDWR)
        os.makedirs(sdir, mode=0o700, exist_ok=True)
        log = os.open(os.path.join(sdir, "daemon.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        # Claude Code waits for EOF on our stdout/stderr: the daemon must not keep them (or anything else) open.
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.dup2(log, 2)
        os.closerange(3, 1 << 16)
        os.chdir("/")
        code = f"import sys; sys.path.insert(0, {root!r}); from services.sentinel.daemon import main; main()"
        os.execv(sys.executable, [sys.executable, "-I", "-S", "-c", code])
    finally:
        os._exit(0)


def ask(started: float) -> tuple[int, bytes, bytes] | bytes:
    """The daemon's answer (exit code, stdout, stderr), or the bytes of stdin read so far when this call must be
    judged in-process (`run_pre(started, prefix)`). Raises once the request is out and the answer is not."""
    import _signal
    import time

    try:
        prefix, complete = read_input()
    except OSError:
        return b""  # the in-process path reads again and reports the error
    sdir = sentinel_dir()
    try:
        if not complete:
            raise Fallback("input too large")
        _arm(started, 0)
        return ask_daemon(started, prefix, sdir + "/judge.sock")
    except Fallback as exc:
        if complete and _env("SENTINEL_TEST_DAEMON_ONLY"):  # test-only: prove the daemon answered
            raise RuntimeError(f"no daemon answered ({exc})") from None
    _signal.signal(_signal.SIGALRM, _expired)  # back to the plain 1 s deadline
    _signal.setitimer(_signal.ITIMER_REAL, max(started + DEADLINE - time.monotonic(), 0.001))
    try:  # noqa: SIM105 - contextlib is not worth its import on the hook path
        spawn_daemon(sdir)
    except Exception:
        pass  # this call is judged here regardless
    return prefix
