"""Latency of SENTINEL's PreToolUse hook as Claude Code pays it: the whole process, spawn to exit.

Runs every case of tests/sentinel_corpus/*.jsonl through the hook (as installed: the venv interpreter with
`-I -S`) for a few rounds, both with the warm judge daemon (the normal case) and with `SENTINEL_DAEMON=off`
(judged in the hook process, as when no daemon runs), interleaved with `python -c pass` on the same
interpreter (with and without the same flags) in the same run, and prints p50/p95/p99.
Targets (issue 3), for the daemon mode: p50 < 25 ms, p99 < 60 ms on a 2-core machine.

    .venv/bin/python benchmarks/hook_latency.py [--rounds 3] [--plain] [--importtime]

Use the venv interpreter (`.venv/bin/python`), never a pyenv shim: the shim alone costs ~100 ms.
State goes to a temporary AISTACK_HOME / SENTINEL_AUDIT_DIR, never to your real audit log.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRE = ROOT / "hooks" / "pre_tool_use.py"
CORPUS = ROOT / "tests" / "sentinel_corpus"
FLAGS = ["-I", "-S"]
TARGET_P50, TARGET_P99 = 25.0, 60.0


def load_cases() -> list[dict]:
    cases = []
    for f in sorted(CORPUS.glob("*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.lstrip().startswith("//"):
                cases.append(json.loads(line))
    return cases


def payload(case: dict) -> bytes:
    if "raw" in case:  # a malformed-input case carries its stdin verbatim
        raw = case["raw"]
        return raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else bytes(raw)
    return json.dumps({
        "session_id": "bench-session", "transcript_path": "/home/dev/.claude/projects/x/bench.jsonl",
        "cwd": case.get("cwd") or "/home/dev/project", "permission_mode": case.get("permission_mode", "default"),
        "hook_event_name": "PreToolUse", "tool_name": case["tool_name"], "tool_input": case["tool_input"],
        "tool_use_id": f"toolu_{case.get('id', 'x')}"}).encode()


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(p / 100 * len(s) + 0.5) - 1))  # nearest rank
    return s[k]


def timed(cmd: list[str], stdin: bytes, env: dict[str, str]) -> tuple[float, int]:
    t = time.perf_counter()
    out = subprocess.run(cmd, input=stdin, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (time.perf_counter() - t) * 1000, out.returncode


def line(name: str, values: list[float]) -> str:
    return (f"  {name:<34} n={len(values):<5} p50 {pct(values, 50):6.1f} ms   p95 {pct(values, 95):6.1f} ms"
            f"   p99 {pct(values, 99):6.1f} ms   max {max(values):6.1f} ms")


def importtime(py: str, stdin: bytes, env: dict[str, str], top: int = 15) -> None:
    out = subprocess.run([py, *FLAGS, "-X", "importtime", str(PRE)], input=stdin, env=env, capture_output=True)
    rows = []
    for ln in out.stderr.decode(errors="replace").splitlines():
        parts = ln.removeprefix("import time:").split("|")
        if ln.startswith("import time:") and len(parts) == 3 and parts[0].strip().isdigit():
            rows.append((int(parts[1]), int(parts[0]), parts[2].rstrip()))
    total = sum(r[1] for r in rows)
    print(f"\n-X importtime of one hook run (child process): {len(rows)} modules, {total / 1000:.1f} ms self total")
    for cum, self_us, name in sorted(rows, reverse=True)[:top]:
        print(f"  {cum / 1000:7.2f} ms cumulative  {self_us / 1000:6.2f} ms self  {name}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--plain", action="store_true", help="also time the hook without -I -S")
    ap.add_argument("--importtime", action="store_true", help="show the costliest imports of one hook run")
    args = ap.parse_args()

    py = sys.executable
    if "shims" in Path(py).parts:
        print(f"refusing to benchmark through a shim ({py}); run with .venv/bin/python", file=sys.stderr)
        return 2
    cases = load_cases()
    if not cases:
        print(f"no corpus in {CORPUS}", file=sys.stderr)
        return 2
    stdins = [payload(c) for c in cases]
    with tempfile.TemporaryDirectory(prefix="sentinel-bench-") as tmp:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/home/dev", "LANG": "C.UTF-8",
               "AISTACK_HOME": f"{tmp}/aistack", "SENTINEL_AUDIT_DIR": f"{tmp}/audit"}
        # As after `aistack hooks install`: the state directory exists (the policy loader caches there).
        os.makedirs(f"{tmp}/aistack/sentinel", mode=0o700)
        off = {**env, "SENTINEL_DAEMON": "off"}
        for stdin in stdins[:3]:  # warm-up: byte-code and policy caches; the first call spawns the daemon
            timed([py, *FLAGS, str(PRE)], stdin, env)
        lock = Path(tmp, "aistack", "sentinel", "judge.lock")
        for _ in range(100):  # wait until the daemon serves
            if lock.exists() and lock.read_text().strip() and Path(tmp, "aistack", "sentinel", "judge.sock").exists():
                break
            time.sleep(0.05)
        for stdin in stdins[:3]:
            timed([py, *FLAGS, str(PRE)], stdin, env)
        hook: list[float] = []
        inproc: list[float] = []
        plain: list[float] = []
        base: list[float] = []
        base_flags: list[float] = []
        codes: dict[int, int] = {}
        per_case: list[list[float]] = [[] for _ in cases]
        for _ in range(args.rounds):
            for i, stdin in enumerate(stdins):
                ms, rc = timed([py, *FLAGS, str(PRE)], stdin, env)
                hook.append(ms)
                per_case[i].append(ms)
                codes[rc] = codes.get(rc, 0) + 1
                inproc.append(timed([py, *FLAGS, str(PRE)], stdin, off)[0])
                base.append(timed([py, "-c", "pass"], b"", env)[0])
                base_flags.append(timed([py, *FLAGS, "-c", "pass"], b"", env)[0])
                if args.plain:
                    plain.append(timed([py, str(PRE)], stdin, env)[0])
        print(f"SENTINEL PreToolUse hook latency, whole process (spawn → exit), {os.cpu_count()} CPU(s)")
        print(f"interpreter: {py} (Python {sys.version.split()[0]})")
        print(f"corpus: {len(cases)} cases × {args.rounds} rounds; exit codes {dict(sorted(codes.items()))}\n")
        print(line("hook, warm daemon", hook))
        print(line("hook, SENTINEL_DAEMON=off", inproc))
        if plain:
            print(line("hook: python pre_tool_use.py", plain))
        print(line("baseline: python -c pass", base))
        print(line(f"baseline: python {' '.join(FLAGS)} -c pass", base_flags))
        p50, p99 = pct(hook, 50), pct(hook, 99)
        print(f"\nhook minus `python {' '.join(FLAGS)} -c pass`: p50 +{p50 - pct(base_flags, 50):.1f} ms, "
              f"p99 +{p99 - pct(base_flags, 99):.1f} ms")
        ok50, ok99 = p50 < TARGET_P50, p99 < TARGET_P99
        print(f"targets: p50 < {TARGET_P50:g} ms: {'met' if ok50 else 'MISSED'} ({p50:.1f}); "
              f"p99 < {TARGET_P99:g} ms: {'met' if ok99 else 'MISSED'} ({p99:.1f})")
        slowest = sorted(range(len(cases)), key=lambda i: -pct(per_case[i], 50))[:5]
        print("slowest cases (median over rounds): " + ", ".join(
            f"{cases[i].get('id', i)} {pct(per_case[i], 50):.1f} ms" for i in slowest))
        if args.importtime:
            importtime(py, stdins[0], env)
        with contextlib.suppress(OSError, ValueError):  # else the daemon idles 30 minutes on a deleted home
            os.kill(int(lock.read_text().strip()), signal.SIGTERM)
    return 0


if __name__ == "__main__":
    sys.exit(main())
