"""The warm judge daemon (services/sentinel/daemon.py) and the hook's client (services/sentinel/client.py).

Each test has its own AISTACK_HOME; every daemon started here, by the test or spawned by the hook, is killed at
the end (its pid is in judge.lock). `SENTINEL_DAEMON_IDLE` keeps any straggler short-lived anyway.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import pytest

from services.sentinel import daemon as daemon_mod
from tests.test_hook_corpus import CASES, stdin_of

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ("-I", "-S")


class Home:
    """A SENTINEL home plus a checkout of the code (so a test may change the code under a running daemon)."""

    def __init__(self, tmp: Path, root: Path = ROOT) -> None:
        self.tmp = tmp
        self.root = root
        self.aistack = tmp / "aistack"
        self.sdir = self.aistack / "sentinel"
        self.audit_dir = tmp / "audit"
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/home/dev", "LANG": "C.UTF-8",
                    "AISTACK_HOME": str(self.aistack), "SENTINEL_AUDIT_DIR": str(self.audit_dir),
                    "SENTINEL_DAEMON_IDLE": "20"}
        self.pids: set[int] = set()

    @property
    def sock(self) -> Path:
        return self.sdir / "judge.sock"

    def hook(self, stdin: bytes, env: dict[str, str] | None = None,
             timeout: float = 30) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([sys.executable, *FLAGS, str(self.root / "hooks" / "pre_tool_use.py")], input=stdin,
                              capture_output=True, env={**self.env, **(env or {})}, cwd=str(self.tmp),
                              timeout=timeout)

    def start(self, setup: str = "pass", wait: bool = True) -> int:
        """Start a daemon in the foreground of a child process and (unless told not to) wait until it serves."""
        code = (f"import sys; sys.path.insert(0, {str(self.root)!r}); from services.sentinel import daemon; "
                f"{setup}; sys.exit(daemon.main())")
        proc = subprocess.Popen([sys.executable, *FLAGS, "-c", code], env=self.env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.pids.add(proc.pid)
        if wait:
            self.wait_serving()
        return proc.pid

    def daemon_pid(self) -> int | None:
        try:
            text = (self.sdir / "judge.lock").read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def wait_serving(self, timeout: float = 10) -> int:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            pid = self.daemon_pid()
            if pid and self.sock.exists():
                with socket.socket(socket.AF_UNIX) as s:
                    try:
                        s.connect(str(self.sock))
                        if s.recv(1) == b"S":
                            self.pids.add(pid)
                            return pid
                    except OSError:
                        pass
            time.sleep(0.05)
        raise AssertionError("no daemon came up")

    def kill_all(self) -> None:
        pid = self.daemon_pid()
        if pid:
            self.pids.add(pid)
        for pid in self.pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        for pid in self.pids:
            with contextlib.suppress(ChildProcessError):  # reap the ones that are our children
                os.waitpid(pid, 0)

    def events(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for f in sorted(self.audit_dir.glob("*.jsonl")):
            out += [json.loads(x) for x in f.read_text().splitlines()]
        return out


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Home]:
    h = Home(tmp_path)
    yield h
    h.kill_all()


def bash(command: str, tool_use_id: str = "toolu_d") -> bytes:
    return json.dumps({"session_id": "s", "cwd": "/home/dev/project", "permission_mode": "default",
                       "hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": command},
                       "tool_use_id": tool_use_id}).encode()


RM = bash("rm -rf /")


# ------------------------------------------------------------------------------------------------ identity

def test_daemon_answers_the_whole_corpus_byte_identically(home: Home) -> None:
    def run_all(env: dict[str, str]) -> list[subprocess.CompletedProcess[bytes]]:
        def one(case: dict[str, Any]) -> subprocess.CompletedProcess[bytes]:
            extra = {str(k): str(v) for k, v in (case.get("env") or {}).items()}
            return home.hook(stdin_of(case), env={**env, **extra}, timeout=60)

        with ThreadPoolExecutor(4) as pool:
            return list(pool.map(one, CASES))

    inproc = run_all({"SENTINEL_DAEMON": "off"})
    n_inproc = len(home.events())
    home.start()
    served = run_all({"SENTINEL_TEST_DAEMON_ONLY": "1"})  # a fallback would block with an internal error
    events = home.events()
    first = {e["input_sha256"]: e for e in events[:n_inproc]}
    second = {e["input_sha256"]: e for e in events[n_inproc:]}
    assert len(events) == 2 * n_inproc
    for case, a, b in zip(CASES, inproc, served, strict=True):
        where = case["_where"]
        assert (b.returncode, b.stdout, b.stderr) == (a.returncode, a.stdout, a.stderr), where
        sha = hashlib.sha256(stdin_of(case)).hexdigest()
        if sha in first:
            assert (second[sha]["decision"], second[sha]["rule_id"]) == (first[sha]["decision"],
                                                                         first[sha]["rule_id"]), where


# ------------------------------------------------------------------------------------------------ fallback

def test_a_killed_daemon_falls_back_and_still_blocks(home: Home) -> None:
    pid = home.start()
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    assert home.sock.exists()  # left behind: connecting is refused
    out = home.hook(RM)
    assert out.returncode == 2 and b"[rm-recursive-force]" in out.stderr
    assert [e["rule_id"] for e in home.events()] == ["rm-recursive-force"]  # judged and logged exactly once
    home.wait_serving()  # the hook spawned a successor for the next call
    out = home.hook(RM, env={"SENTINEL_TEST_DAEMON_ONLY": "1"})
    assert out.returncode == 2 and b"[rm-recursive-force]" in out.stderr
    assert len(home.events()) == 2


def test_a_stale_socket_file_falls_back(home: Home) -> None:
    home.sdir.mkdir(parents=True, mode=0o700)
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(home.sock))  # bound, never listening, then closed: a socket file nobody answers
    out = home.hook(bash("ls -la"))
    assert out.returncode == 0 and out.stdout == b"" and out.stderr == b""
    assert [e["decision"] for e in home.events()] == ["allow"]
    home.wait_serving()  # and a daemon replaced it


def test_sentinel_daemon_off_neither_uses_nor_spawns(home: Home) -> None:
    out = home.hook(RM, env={"SENTINEL_DAEMON": "off"})
    assert out.returncode == 2
    time.sleep(0.5)
    assert not home.sock.exists() and home.daemon_pid() is None


class FakeDaemon:
    """A daemon that holds the lock and the socket, says b"S", then misbehaves as told."""

    def __init__(self, home: Home, behaviour: str) -> None:
        home.sdir.mkdir(parents=True, mode=0o700, exist_ok=True)
        self.lock = os.open(home.sdir / "judge.lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.lock, fcntl.LOCK_EX)  # so the client does not spawn a real one
        self.listener = socket.socket(socket.AF_UNIX)
        self.listener.bind(str(home.sock))
        self.listener.listen(4)
        self.behaviour = behaviour
        self.got = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            if self.behaviour == "garbage-hello":
                conn.sendall(b"?")
                return
            conn.sendall(b"S")
            conn.recv(1 << 20)
            self.got.set()
            if self.behaviour == "hang":
                time.sleep(5)
            elif self.behaviour == "garbage":
                conn.sendall(b"R\x01\x00\x00\x00\x00\x00\x00\x00\x00")  # exit code 1: never accepted
            # "die": close without a word

    def close(self) -> None:
        self.listener.close()
        os.close(self.lock)


@pytest.mark.parametrize("behaviour, rule", [("hang", "sentinel-deadline"), ("die", "sentinel-internal-error"),
                                             ("garbage", "sentinel-internal-error")])
def test_a_daemon_that_fails_after_the_request_blocks(home: Home, behaviour: str, rule: str) -> None:
    fake = FakeDaemon(home, behaviour)
    try:
        t = time.monotonic()
        out = home.hook(bash("ls -la"))
        took = time.monotonic() - t
    finally:
        fake.close()
    assert fake.got.is_set()
    assert out.returncode == 2 and out.stdout == b""
    assert out.stderr.decode().startswith(f"SENTINEL blocked [{rule}]: ")
    assert took < 2.0  # the 1 s deadline plus the client's grace, not the daemon's 5 s
    assert home.events() == []  # the request went out: the client neither judges nor logs it a second time


def test_a_garbage_handshake_falls_back(home: Home) -> None:
    fake = FakeDaemon(home, "garbage-hello")
    try:
        out = home.hook(RM)
    finally:
        fake.close()
    assert out.returncode == 2 and b"[rm-recursive-force]" in out.stderr
    assert [e["rule_id"] for e in home.events()] == ["rm-recursive-force"]


def test_a_deadline_inside_the_daemon_blocks_and_the_daemon_stays_healthy(home: Home) -> None:
    pid = home.start()
    out = home.hook(bash("ls -la", "toolu_slow"), env={"SENTINEL_TEST_SLEEP": "5", "SENTINEL_TEST_DAEMON_ONLY": "1"})
    assert out.returncode == 2 and out.stderr.decode().startswith("SENTINEL blocked [sentinel-deadline]: ")
    # Under load the client's own timer (0.25 s later) can answer first; the daemon's line still follows.
    end = time.monotonic() + 3
    while not home.events() and time.monotonic() < end:
        time.sleep(0.05)
    assert [(e["rule_id"], e["tool_use_id"]) for e in home.events()] == [("sentinel-deadline", "toolu_slow")]
    out = home.hook(bash("ls -la"), env={"SENTINEL_TEST_DAEMON_ONLY": "1"})
    assert out.returncode == 0 and home.daemon_pid() == pid


# ------------------------------------------------------------------------------------------------ processes

def judge_children(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children()
    except psutil.NoSuchProcess:
        return []


def wait_for(check: Any, timeout: float = 5.0) -> Any:
    end = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > end:
            return value
        time.sleep(0.02)


def test_a_warm_spare_waits_before_each_call_and_dies_with_the_daemon(home: Home) -> None:
    pid = home.start()
    spares = wait_for(lambda: judge_children(pid))
    assert len(spares) == 1  # forked and warmed before anybody asked
    first = spares[0].pid
    out = home.hook(RM, env={"SENTINEL_TEST_DAEMON_ONLY": "1"})
    assert out.returncode == 2 and b"[rm-recursive-force]" in out.stderr
    # That spare served the call and is gone; a fresh one already waits for the next.
    assert wait_for(lambda: [c.pid for c in judge_children(pid) if c.pid != first and c.is_running()])
    assert wait_for(lambda: first not in [c.pid for c in judge_children(pid)])
    spare = judge_children(pid)[0]
    os.kill(pid, signal.SIGKILL)  # the daemon dies hard: its spare must not linger, holding the socket
    os.waitpid(pid, 0)
    assert wait_for(lambda: not spare.is_running() or spare.status() == psutil.STATUS_ZOMBIE, timeout=3)
    out = home.hook(RM)  # judged in-process, as with no daemon at all
    assert out.returncode == 2 and [e["rule_id"] for e in home.events()] == ["rm-recursive-force"] * 2


def test_with_no_free_slot_the_daemon_declines_at_once_and_the_call_is_judged_in_process(home: Home) -> None:
    # MAX_CHILDREN calls in flight (here: a limit of 0, so always) leave no spare: the parent itself answers.
    home.start("daemon.MAX_CHILDREN = 0", wait=False)
    assert wait_for(lambda: home.sock.exists() and home.daemon_pid(), timeout=10)
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(2)
        s.connect(str(home.sock))
        assert s.recv(1) == b"N"  # declined at once, not left to time out
    t = time.monotonic()
    out = home.hook(RM)
    assert out.returncode == 2 and b"[rm-recursive-force]" in out.stderr
    assert [e["rule_id"] for e in home.events()] == ["rm-recursive-force"]
    assert time.monotonic() - t < 5  # no wait for a handshake that never comes


@pytest.mark.parametrize("value", ["", "/srv/aistack", "~", "~/stack", "~/x/../y", "/a//b", "/a/./b/", "rel/dir",
                                   "$HOME/stack", "${XDG_DATA_HOME}/aistack", "~other/stack", "/with space/é"])
def test_the_hook_client_finds_the_same_state_directory_as_the_services(value: str,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from services.sentinel import client, paths

    monkeypatch.setenv("HOME", "/home/dev")
    monkeypatch.setenv("XDG_DATA_HOME", "/home/dev/.data")
    monkeypatch.setenv("AISTACK_HOME", value)
    assert client.sentinel_dir() == paths.sentinel_dir()


# ------------------------------------------------------------------------------------------------ who may ask

def test_peer_check() -> None:
    assert daemon_mod.peer_allowed(1000, 1000)
    assert not daemon_mod.peer_allowed(0, 1000)
    assert not daemon_mod.peer_allowed(1001, 1000)
    a, b = socket.socketpair(socket.AF_UNIX)
    with a, b:
        assert daemon_mod.peer_uid(a) == os.getuid()


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to become another user")
def test_another_uid_is_not_served() -> None:
    base = Path(tempfile.mkdtemp(prefix="sentinel-uid-"))  # outside pytest's 0700 tree: reachable by others
    home = Home(base)
    try:
        home.start()
        for d in (base, home.aistack, home.sdir):
            os.chmod(d, 0o755)  # let the other user reach the socket, so that SO_PEERCRED must refuse it
        os.chmod(home.sock, 0o666)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            try:
                os.setgid(65534)
                os.setuid(65534)
                with socket.socket(socket.AF_UNIX) as s:
                    s.settimeout(2)
                    s.connect(str(home.sock))
                    os.write(w, s.recv(1) or b"-")
            except BaseException as exc:
                os.write(w, type(exc).__name__.encode())
            os._exit(0)
        os.close(w)
        os.waitpid(pid, 0)
        answer = os.read(r, 100)
        os.close(r)
        assert answer == b"-"  # connected, then closed without a word
    finally:
        home.kill_all()
        shutil.rmtree(base, ignore_errors=True)


# ------------------------------------------------------------------------------------------------ staleness

def test_a_code_change_retires_the_daemon_and_the_call_is_still_judged(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    for part in ("hooks", "policies", "services/sentinel"):
        shutil.copytree(ROOT / part, root / part, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "services" / "__init__.py").write_text("")
    h = Home(tmp_path, root)
    try:
        old = h.start()
        assert h.hook(RM, env={"SENTINEL_TEST_DAEMON_ONLY": "1"}).returncode == 2
        judge = root / "services" / "sentinel" / "judge.py"
        judge.write_text(judge.read_text() + "\n# changed\n")
        out = h.hook(RM)  # the daemon declines and exits; this call is judged in-process
        assert out.returncode == 2 and b"[rm-recursive-force]" in out.stderr
        assert len(h.events()) == 2
        for _ in range(100):
            try:
                os.kill(old, 0)
            except OSError:
                break
            if os.waitpid(old, os.WNOHANG)[0]:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the stale daemon did not exit")
        assert h.hook(RM).returncode == 2  # judged in-process; it spawns a daemon with the new code
        assert len(h.events()) == 3
        assert h.wait_serving() != old
        assert h.hook(RM, env={"SENTINEL_TEST_DAEMON_ONLY": "1"}).returncode == 2
    finally:
        h.kill_all()
