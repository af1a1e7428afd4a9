"""wsl-audit's figures (issue 6): whole-process time of the one-shot, and the watch loop's CPU use.

    .venv/bin/python benchmarks/health_oneshot.py [--runs 40] [--watch-seconds 150]

1. `wsl-audit` as a user runs it (the venv's console script, samples saved), on this host, with Docker absent:
   p50/p95 over --runs runs. Target: ≤ 300 ms.
2. The same with DOCKER_HOST at a fake Docker Engine API (tests/fake_docker.py, the real SDK talking to it) holding
   200 containers, three of them in a restart storm: the first run (cold: log configs not yet cached) and p50/p95
   of the runs after it.
3. `wsl-audit watch --interval 30 --no-notify` for --watch-seconds against the same fake daemon: CPU seconds used
   (user + system, from /proc) over wall time, as a percentage of one core.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WSL_AUDIT = str(Path(sys.executable).parent / "wsl-audit")


def pct(v: list[float], p: float) -> float:
    s = sorted(v)
    return s[max(0, min(len(s) - 1, round(p / 100 * len(s) + 0.5) - 1))]


def timed_runs(env: dict[str, str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        proc = subprocess.run([WSL_AUDIT], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        out.append((time.perf_counter() - t) * 1000)
        if proc.returncode not in (0, 1, 2):
            sys.exit(f"wsl-audit failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--watch-seconds", type=float, default=150.0)
    a = ap.parse_args()
    from tests.fake_docker import FakeDocker, container, die

    home = Path(tempfile.mkdtemp(prefix="wsl-audit-bench-"))
    base = {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "WSL_AUDIT_ROOT")}
    base.update(WSL_AUDIT_HOME=str(home / "state"), NO_COLOR="1")

    absent = timed_runs({**base, "WSL_AUDIT_HOME": str(home / "absent")}, a.runs)
    print(f"one-shot, Docker absent ({a.runs} runs): p50 {pct(absent, 50):.0f} ms, p95 {pct(absent, 95):.0f} ms, "
          f"min {min(absent):.0f} ms (target ≤ 300 ms)")

    now = time.time()
    crowd = [container(f"svc-{i:03d}", now=now) for i in range(197)]
    storm = [container(f"flapper-{i}", restart_count=5 + i, started_at=now - 20, now=now) for i in range(3)]
    deaths = [die(c, at=now - 30 * k) for c in storm for k in range(1, 5)]
    with FakeDocker([*crowd, *storm], events=deaths) as engine:
        env = {**base, "DOCKER_HOST": engine.base_url}
        first = timed_runs(env, 1)[0]
        warm = timed_runs(env, a.runs)
        print(f"one-shot, fake daemon with 200 containers: first run {first:.0f} ms; then ({a.runs} runs) "
              f"p50 {pct(warm, 50):.0f} ms, p95 {pct(warm, 95):.0f} ms")
        if a.watch_seconds > 0:
            proc = subprocess.Popen([WSL_AUDIT, "watch", "--interval", "30", "--no-notify"], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            t0 = time.monotonic()
            time.sleep(a.watch_seconds)
            cpu = cpu_seconds(proc.pid)
            wall = time.monotonic() - t0
            proc.terminate()
            proc.wait(10)
            ticks = int(wall // 30) + 1
            print(f"watch --interval 30 for {wall:.0f} s ({ticks} ticks, 200 containers): {cpu:.2f} CPU s = "
                  f"{cpu / wall * 100:.2f} % of one core ({statistics.mean([cpu / ticks]) * 1000:.0f} ms CPU "
                  f"per tick, start-up included)")


if __name__ == "__main__":
    main()
