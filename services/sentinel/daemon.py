"""The warm judge daemon: answers `hooks/pre_tool_use.py` over a Unix socket so a tool call does not pay the
judge's imports (~25-35 ms) in a fresh process every time. Stdlib only.

    $AISTACK_HOME/sentinel/judge.sock   the socket (directory 0700, socket 0600; peers must have our uid)
    $AISTACK_HOME/sentinel/judge.lock   flock held for the daemon's whole life: one daemon per home
    $AISTACK_HOME/sentinel/daemon.log   what it has to say (stderr when the hook spawned it)

The hook spawns it when nobody answers (`SENTINEL_DAEMON=off` stops that); `start_daemon()` does the same for
a caller such as the bot. Run in the foreground with `python -m services.sentinel.daemon` from the repository.

Process model: the parent never accepts while a *spare* exists. The spare is a child forked ahead of time that
has already run one throwaway call (a fresh fork pays ~550 copy-on-write page faults, ~3 ms, on its first call;
the spare pays them before anybody waits). It accepts one connection (and, once that call is answered or waits for
an approval, tells the parent to fork its successor, whose warm-up so never competes with a live call), checks the
peer's uid and whether our code or the default policy changed since start-up (if
stale: b"N", the client judges in-process, and the daemon exits so that the next call spawns a fresh one), says
b"S" and serves that one request. Each request so gets exactly the in-process run (`hookio.judge_request`): its
own `os.environ` (the client's), working directory, SIGALRM deadline and `os._exit(2)` when it passes, while the
parent never runs judge code and stays healthy. When MAX_CHILDREN requests are in flight there is no spare and
the parent itself declines (b"N"). A call that arrives while the spare is still serving waits in the listen
backlog until that answer is out and the successor is warm (milliseconds; an approval wait hands over at once).
Children notice a dead parent through the `life` pipe's EOF.
Wire format: see client.py.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
import socket
import struct
import sys
import time
from collections.abc import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CLIENT = os.path.join(HERE, "client.py")  # the other half of the wire format
MAGIC = b"SJ1"  # client.MAGIC
MAX_REQUEST = (1 << 20) + (1 << 20)  # the input (≤ 1 MiB + 1) plus a generous environment
IDLE_EXIT = 30 * 60.0  # seconds without a request, then exit
TICK = 5.0  # seconds between housekeeping rounds (reap children, check the socket is still ours)
MAX_CHILDREN = 16  # more concurrent requests than this: decline, the client judges in-process
CHILD_LIMIT = 600.0 + 10.0  # paths.MAX_APPROVAL_WAIT + deadline + slack: a child older than this is killed


def _log(msg: str) -> None:
    try:  # the log is best effort
        sys.stderr.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} sentinel-daemon[{os.getpid()}] {msg}\n")
        sys.stderr.flush()
    except Exception:
        pass


def peer_uid(conn: socket.socket) -> int:
    """The uid of the process at the other end of a Unix socket (SO_PEERCRED: struct ucred {pid, uid, gid})."""
    _pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                          struct.calcsize("3i")))
    return int(uid)


def peer_allowed(uid: int, own_uid: int | None = None) -> bool:
    """Only our own user may have calls judged (and learn about them) here; not even root is served."""
    return uid == (os.getuid() if own_uid is None else own_uid)


# ------------------------------------------------------------------------------------------- staleness

def watched_files() -> list[str]:
    """The files whose change makes this daemon stale: the judge's modules, the default policy, the client."""
    from . import policy

    files = {CLIENT, os.path.join(HERE, "daemon.py"), policy.DEFAULT_POLICY}
    for name, mod in list(sys.modules.items()):
        f = getattr(mod, "__file__", None)
        if f and (name.startswith("services.sentinel") or name == "services"):
            files.add(f)
    return sorted(files)


def fingerprint(files: list[str]) -> list[tuple[str, int, int]]:
    out = []
    for f in files:
        try:
            st = os.stat(f)
            out.append((f, st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((f, -1, -1))
    return out


# ------------------------------------------------------------------------------------------------- wire

def _u32(n: int) -> bytes:
    return n.to_bytes(4, "big")


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = conn.recv(min(n - len(buf), 1 << 16))
        if not chunk:
            raise ConnectionError("the client closed the connection mid-request")
        buf += chunk
    return bytes(buf)


def read_request(conn: socket.socket) -> tuple[float, bytes, bytes, dict[bytes, bytes]]:
    """(started, cwd, stdin, environment) from the client; ValueError if it is not our wire format."""
    if _recv_exact(conn, len(MAGIC)) != MAGIC:
        raise ValueError("bad magic")
    size = int.from_bytes(_recv_exact(conn, 4), "big")
    if size > MAX_REQUEST:
        raise ValueError(f"request of {size} bytes")
    body = memoryview(_recv_exact(conn, size))
    items: list[bytes] = []
    pos = 0
    while pos < len(body):
        n = int.from_bytes(body[pos:pos + 4], "big")
        if pos + 4 + n > len(body):
            raise ValueError("truncated item")
        items.append(bytes(body[pos + 4:pos + 4 + n]))
        pos += 4 + n
    if len(items) < 3:
        raise ValueError("missing items")
    env: dict[bytes, bytes] = {}
    for item in items[3:]:
        key, sep, value = item.partition(b"=")
        if not sep or not key:
            raise ValueError("bad environment entry")
        env[key] = value
    return float(items[0].decode("ascii")), items[1], items[2], env


def answer_frame(code: int, out: bytes, err: bytes) -> bytes:
    return b"R" + bytes([code]) + _u32(len(out)) + out + _u32(len(err)) + err


def wait_frame(seconds: float) -> bytes:
    text = repr(float(seconds)).encode("ascii")
    return b"W" + _u32(len(text)) + text


# ---------------------------------------------------------------------------------------------- request

def serve_request(conn: socket.socket, done: Callable[[], None] = lambda: None) -> None:
    """In the forked child: read the request, judge it as the in-process hook would, answer, never return.
    `done()` runs once the caller has its answer or is told to wait (and at the latest on the way out)."""
    from . import hookio
    from .audit import sha256

    sent = False

    def deliver(code: int, out: bytes, err: bytes) -> None:
        nonlocal sent
        if not sent:  # one answer per request, whoever (the run or its deadline handler) gets there first
            sent = True
            try:
                conn.sendall(answer_frame(code, out, err))
            finally:
                done()

    def announce_wait(seconds: float) -> None:
        conn.sendall(wait_frame(seconds))
        done()

    code = 2
    try:
        conn.settimeout(hookio.DEADLINE)
        try:
            started, cwd, raw, env = read_request(conn)
        except (OSError, ValueError) as exc:
            _log(f"bad request: {exc}")
            line = hookio.block_line(hookio.INTERNAL, f"internal error (bad request to the judge daemon: {exc})",
                                     hookio.ALTERNATIVES[hookio.INTERNAL])
            deliver(2, b"", (line + "\n").encode("utf-8", "backslashreplace"))
            return
        conn.settimeout(None)  # from here on the SIGALRM deadline in hookio bounds everything
        # This process is ours alone: become the client's environment, as its own process would be.
        os.environ.clear()
        for key, value in env.items():
            os.environb[key] = value
        os.chdir(cwd)
        h = sha256()
        h.update(raw)
        code, out, err = hookio.judge_request(raw, h.hexdigest(), started, deliver=deliver,
                                              announce_wait=announce_wait)
        import _signal

        _signal.setitimer(_signal.ITIMER_REAL, 0)  # answered: the deadline must not answer a second time
        deliver(code, out, err)
    except BaseException as exc:
        _log(f"request failed: {type(exc).__name__}: {exc}")
        # Nothing sent yet means the client still waits: an internal-error block is the only safe answer.
        try:  # best effort
            line = hookio.block_line(hookio.INTERNAL, f"internal error ({type(exc).__name__}: {exc})",
                                     hookio.ALTERNATIVES[hookio.INTERNAL])
            deliver(2, b"", (line + "\n").encode("utf-8", "backslashreplace"))
        except BaseException:
            pass
    finally:
        try:
            done()
        finally:
            os._exit(0)


WARM_SAMPLES = [("Bash", {"command": "git status && ls -la | grep x > /tmp/y; rm -rf build"}),
                ("Bash", {"command": "python -c 'import os; os.remove(\"x\")'"}),
                ("Write", {"file_path": "/home/dev/project/.env", "content": "x"}),
                ("Read", {"file_path": "~/.ssh/id_rsa"}), ("WebFetch", {"url": "https://example.com"})]


def exercise(samples: list[tuple[str, dict[str, str]]]) -> None:
    """Run whole hook calls (judge, audit line, alert spool) against a throwaway home; the environment is restored."""
    import _signal
    import json
    import shutil
    import tempfile

    from . import audit, hookio

    saved = dict(os.environ)
    tmp = tempfile.mkdtemp(prefix="sentinel-warm-")
    try:
        os.environ.update(AISTACK_HOME=os.path.join(tmp, "home"), SENTINEL_AUDIT_DIR=os.path.join(tmp, "audit"))
        os.environ.pop("SENTINEL_POLICY", None)
        os.environ.pop("SENTINEL_TEST_SLEEP", None)
        for name, tool_input in samples:
            raw = json.dumps({"tool_name": name, "tool_input": tool_input, "cwd": tmp}).encode()
            hookio.judge_request(raw, audit.sha256_hex(raw), time.monotonic(), deliver=lambda *a: None)
            _signal.setitimer(_signal.ITIMER_REAL, 0)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------------------------------------------ daemon

class Daemon:
    def __init__(self, sdir: str, idle_exit: float = IDLE_EXIT) -> None:
        self.sdir = sdir
        self.sock_path = os.path.join(sdir, "judge.sock")
        self.lock_path = os.path.join(sdir, "judge.lock")
        self.idle_exit = idle_exit
        self.children: dict[int, float] = {}
        self.listener: socket.socket | None = None
        self.sock_ino: tuple[int, int] | None = None
        self.files: list[str] = []
        self.print: list[tuple[str, int, int]] = []
        self.spare: int | None = None  # the child waiting to accept the next call
        self.lock_fd = self.notify_r = self.notify_w = self.life_r = self.life_w = -1

    def warm(self) -> None:
        """Import the judge and run it once over a few calls, so that children start with compiled patterns."""
        from . import approvals, audit, hookio, judge, policy, redact, spool  # noqa: F401 - imported to be warm
        from .model import ToolCall

        pol = policy.load_policy(None)
        samples = WARM_SAMPLES
        for name, tool_input in samples:
            judge.judge(ToolCall(tool_name=name, tool_input=tool_input, cwd="/home/dev/project"), pol)
        # One full run per kind of answer (allow, warn, block with alert) against a throwaway home, so that the
        # modules the run imports lazily (audit writing, alert spooling, ...) are loaded here, not per child.
        import gc

        exercise(samples)
        gc.collect()
        gc.freeze()  # children then leave the warm objects' pages alone (fewer copy-on-write faults per fork)

    def stale(self) -> bool:
        return fingerprint(self.files) != self.print

    def socket_is_ours(self) -> bool:
        try:
            st = os.stat(self.sock_path)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == self.sock_ino

    def reap(self, kill_after: float = CHILD_LIMIT) -> None:
        now = time.monotonic()
        for pid, born in list(self.children.items()):
            try:
                done, _status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                del self.children[pid]
                if pid == self.spare:  # died before taking a call (its "taken" message, if any, is then ignored)
                    self.spare = None
            elif now - born > kill_after:
                try:  # noqa: SIM105 - it may have just exited
                    os.kill(pid, 9)
                except OSError:
                    pass

    def run(self) -> int:
        """Serve until idle, stale or displaced. Returns the exit status (0 also when another daemon runs)."""
        os.makedirs(self.sdir, mode=0o700, exist_ok=True)
        os.chmod(self.sdir, 0o700)
        lock = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return 0  # another daemon serves this home
            raise
        os.ftruncate(lock, 0)
        os.write(lock, f"{os.getpid()}\n".encode())  # who holds it: for `kill`, tests and curious admins
        self.lock_fd = lock
        self.notify_r, self.notify_w = os.pipe2(os.O_CLOEXEC)
        self.life_r, self.life_w = os.pipe2(os.O_CLOEXEC)
        try:
            self.warm()
            self.files = watched_files()
            self.print = fingerprint(self.files)
            # We hold the lock, so a socket file left here is from a daemon that is gone.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.sock_path)
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            old = os.umask(0o177)  # the socket is born 0600: no window in which others could connect
            try:
                listener.bind(self.sock_path)
            finally:
                os.umask(old)
            st = os.stat(self.sock_path)
            self.sock_ino = (st.st_dev, st.st_ino)
            listener.listen(64)
            listener.setblocking(False)  # accept only after select said so; a lost race is BlockingIOError
            self.listener = listener
            _log(f"serving {self.sock_path}")
            return self.loop(listener)
        finally:
            if self.listener is not None:
                self.listener.close()
                if self.socket_is_ours():
                    try:  # noqa: SIM105
                        os.unlink(self.sock_path)
                    except OSError:
                        pass
            if self.spare is not None:
                with contextlib.suppress(OSError):
                    os.kill(self.spare, 9)  # it would notice the closed life pipe too; no need to wait
            for fd in (self.notify_r, self.notify_w, self.life_r, self.life_w):
                with contextlib.suppress(OSError):
                    os.close(fd)  # closing life_w tells every child that we are gone
            os.close(lock)  # releases the flock: the next call may spawn a successor

    def loop(self, listener: socket.socket) -> int:
        own = os.getuid()
        last = time.monotonic()
        tick = min(TICK, max(self.idle_exit, 0.1))
        while True:
            self.reap()
            if self.spare is None and len(self.children) < MAX_CHILDREN:
                self.fork_spare(listener)
            # While a spare waits, it alone accepts; without one (all MAX_CHILDREN busy) we decline callers.
            watch = [self.notify_r] if self.spare is not None else [self.notify_r, listener.fileno()]
            # At capacity, look again soon: a finished child frees a slot but wakes nobody.
            ready, _, _ = select.select(watch, [], [], tick if self.spare is not None else 0.05)
            if self.notify_r in ready:
                stale = False
                for msg in os.read(self.notify_r, 4096).split(b"\n"):
                    if msg.startswith(b"T") and msg[1:].isdigit() and int(msg[1:]) == self.spare:
                        self.spare = None  # it is serving a call now: the next round forks its successor
                        last = time.monotonic()
                    stale = stale or msg == b"X"
                if stale:
                    _log("code or policy changed: exiting")
                    return 0
                continue
            if listener.fileno() in ready:
                try:
                    conn, _ = listener.accept()
                except BlockingIOError:
                    continue
                last = time.monotonic()
                with conn, contextlib.suppress(OSError):
                    conn.sendall(b"N" if peer_allowed(peer_uid(conn), own) else b"")
                continue
            if time.monotonic() - last > self.idle_exit and len(self.children) <= (self.spare is not None):
                _log("idle: exiting")
                return 0
            if not self.socket_is_ours():
                _log("the socket was removed or replaced: exiting")
                return 0
            if self.stale():
                _log("code or policy changed: exiting")
                return 0

    def fork_spare(self, listener: socket.socket) -> None:
        pid = os.fork()
        if pid:
            self.spare = pid
            self.children[pid] = time.monotonic()
            return
        try:
            self.spare_main(listener)
        except BaseException as exc:  # a child never returns into the parent's loop
            _log(f"spare failed: {type(exc).__name__}: {exc}")
        os._exit(0)

    def spare_main(self, listener: socket.socket) -> None:
        """In the spare child: warm up, wait for one caller, hand it to serve_request (which never returns)."""
        import signal

        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        for fd in (self.lock_fd, self.notify_r, self.life_w):
            os.close(fd)  # the lock and the life pipe's write end belong to the parent alone
        exercise(WARM_SAMPLES[:1])  # pays this process's copy-on-write faults before anybody waits on it
        own = os.getuid()
        while True:
            ready, _, _ = select.select([listener.fileno(), self.life_r], [], [])
            if self.life_r in ready:
                return  # the parent is gone: nobody would fork our successor
            try:
                conn, _ = listener.accept()
            except BlockingIOError:
                continue
            break
        taken = f"T{os.getpid()}\n".encode()

        def done() -> None:
            # Only now may the parent fork our successor: its warm-up would compete for a core with this call.
            nonlocal taken
            if taken:
                os.write(self.notify_w, taken)
                taken = b""

        try:
            listener.close()
            os.close(self.life_r)
            conn.setblocking(True)
            if not peer_allowed(peer_uid(conn), own):
                _log("refused a peer with another uid")
                conn.close()
                return
            if self.stale():
                conn.sendall(b"N")  # the client judges this one itself
                os.write(self.notify_w, b"X\n")
                return
            conn.sendall(b"S")
            serve_request(conn, done)  # never returns
        finally:
            done()


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(0)  # unwinds through Daemon.run's cleanup (socket removed, lock released)


def main() -> int:
    """Run a daemon for $AISTACK_HOME in the foreground. `SENTINEL_DAEMON_IDLE` overrides the idle timeout."""
    import signal

    from .paths import sentinel_dir

    signal.signal(signal.SIGTERM, _terminate)
    try:
        idle = float(os.environ.get("SENTINEL_DAEMON_IDLE", "") or IDLE_EXIT)
    except ValueError:
        idle = IDLE_EXIT
    return Daemon(sentinel_dir(), idle_exit=idle).run()


def start_daemon() -> bool:
    """Start a daemon in the background for this process's AISTACK_HOME, as the hook does; for callers such as
    the bot or a future `aistack sentinel daemon`. False when it is switched off or one already runs."""
    from . import client

    if not client.daemon_enabled():
        return False
    sdir = client.sentinel_dir()
    try:
        fd = os.open(os.path.join(sdir, "judge.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        fd = -1
    if fd >= 0:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        finally:
            os.close(fd)
    client.spawn_daemon(sdir)
    return True


if __name__ == "__main__":
    sys.exit(main())
