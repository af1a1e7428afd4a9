"""LORE figures (issue 4), on generated corpora in the real Claude Code format (shared/tools/gen_claude_corpus.py):

    cold import MB/s end to end (parse, redact, YAML, git, index), peak memory
    re-import of unchanged sources, one appended session, `usage` over the archive
    search p50/p95 on an index of SEARCH_SESSIONS sessions

    .venv/bin/python benchmarks/lore_import.py [--sessions 1000 --mean-kb 200] [--search-sessions 20000]
                                               [--skip-search] [--work DIR]

Corpora are cached under --work (default /tmp/lore-bench) by their generator arguments; archives are rebuilt on
every run. Targets: cold ≥ 5 MB/s; unchanged ≤ 2 s; appended ≤ 1 s; usage ≤ 1 s; search p50 ≤ 20 ms, p95 ≤ 100 ms.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
GEN = ROOT.parent / "shared" / "tools" / "gen_claude_corpus.py"


def corpus(work: Path, sessions: int, mean_kb: int, seed: int = 1) -> Path:
    out = work / f"corpus-{sessions}x{mean_kb}kb-s{seed}"
    if not (out / "expected.json").exists():
        shutil.rmtree(out, ignore_errors=True)
        t = time.monotonic()
        subprocess.run([sys.executable, str(GEN), "--out", str(out), "--sessions", str(sessions), "--mean-kb",
                        str(mean_kb), "--seed", str(seed), "--jobs", "2"], check=True, capture_output=True)
        print(f"generated {out.name} in {time.monotonic() - t:.1f} s")
    return out


def size_of(root: Path) -> int:
    return sum(p.stat().st_size for p in (root / "projects").rglob("*.jsonl"))


def fresh_env(work: Path, name: str):  # type: ignore[no-untyped-def]
    from services.lore import run

    lore = work / name
    shutil.rmtree(lore, ignore_errors=True)
    lore.mkdir(parents=True)
    return run.make_env(lore, work / "redaction.key")


def timed_import(env, homes):  # type: ignore[no-untyped-def]
    from services.lore import run

    t = time.monotonic()
    s = run.run_import(env, homes)
    return time.monotonic() - t, s


def peak_mb() -> tuple[float, float]:
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return me, kids


def append_one(src: Path) -> int:
    """Append a new user prompt and assistant reply to one transcript, as Claude Code would."""
    files = sorted((src / "projects").glob("*/*.jsonl"))
    f = files[len(files) // 2]
    last = None
    for line in f.read_bytes().splitlines():
        try:
            d = json.loads(line)
        except ValueError:
            continue
        if d.get("uuid") and not d.get("isSidechain"):
            last = d
    assert last is not None
    n = random.randrange(1 << 30)
    base = {k: last[k] for k in ("sessionId", "cwd", "version", "gitBranch") if k in last}
    user = {**base, "type": "user", "uuid": f"bench-u-{n}", "parentUuid": last["uuid"], "isSidechain": False,
            "timestamp": "2030-01-01T00:00:00.000Z", "message": {"role": "user", "content": "one more question"}}
    asst = {**base, "type": "assistant", "uuid": f"bench-a-{n}", "parentUuid": f"bench-u-{n}",
            "isSidechain": False, "timestamp": "2030-01-01T00:00:05.000Z", "requestId": f"req_bench{n}",
            "message": {"id": f"msg_bench{n}", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
                        "content": [{"type": "text", "text": "one more answer"}], "stop_reason": "end_turn",
                        "usage": {"input_tokens": 10, "output_tokens": 20, "cache_creation_input_tokens": 0,
                                  "cache_read_input_tokens": 0}}}
    data = (json.dumps(user) + "\n" + json.dumps(asst) + "\n").encode()
    with open(f, "ab") as fh:
        fh.write(data)
    return len(data)


def bench_import(work: Path, sessions: int, mean_kb: int) -> None:
    from services.lore import index, usage

    src = corpus(work, sessions, mean_kb)
    live = work / "claude-live"  # appended to below: a copy, so the cached corpus stays pristine
    shutil.rmtree(live, ignore_errors=True)
    shutil.copytree(src, live)
    mb = size_of(live) / 1e6
    env = fresh_env(work, "lore-import")
    homes = {"claude_code": live}
    secs, s = timed_import(env, homes)
    me, kids = peak_mb()
    print(f"\ncorpus: {sessions} sessions, {mb:.1f} MB, {s.units} sources, {len(s.bad_lines)} malformed lines")
    print(f"  cold import           {secs:7.2f} s   {mb / secs:6.2f} MB/s   (target ≥ 5 MB/s)"
          f"   added {sum(s.added.values())}, errors {len(s.errors)}")
    print(f"  peak RSS              {me:7.0f} MB (this process)   {kids:.0f} MB (largest child: a worker or git)")
    secs, s = timed_import(env, homes)
    print(f"  re-import unchanged   {secs:7.2f} s   (target ≤ 2 s)   skipped {s.skipped_units}/{s.units}")
    nbytes = append_one(live)
    secs, s = timed_import(env, homes)
    print(f"  one appended session  {secs:7.2f} s   (target ≤ 1 s)   read {s.bytes_read} bytes, "
          f"updated {sum(s.updated.values())}")
    assert s.bytes_read == nbytes and sum(s.updated.values()) == 1, s.to_dict()
    conn = index.connect(env.lore_root)
    for by in ("day", "month", "model", "client", "project", "session"):
        t = time.monotonic()
        rows = usage.report(conn, by)
        print(f"  usage --by {by:<8}   {time.monotonic() - t:7.3f} s   ({len(rows)} rows; target ≤ 1 s)")
    expected = json.loads((src / "expected.json").read_text())["totals"]
    tot = usage.total(usage.report(conn, "session"))
    ours = (tot.input_tokens, tot.output_tokens, tot.cache_creation_input_tokens, tot.cache_read_input_tokens)
    exp = (expected["input"] + 10, expected["output"] + 20, expected["cache_creation"], expected["cache_read"])
    print(f"  token totals vs the generator's expected.json plus the appended reply (10 in, 20 out): "
          f"{'equal' if ours == exp else 'DIFFERENT'} {ours}")


def bench_search(work: Path, sessions: int, mean_kb: int, queries: int = 200, reuse: bool = False) -> None:
    from services.lore import index, search

    src = corpus(work, sessions, mean_kb, seed=2)
    mb = size_of(src) / 1e6
    root = work / "lore-search"
    if reuse and (root / ".lore" / "index.sqlite").exists():
        print(f"\nsearch index: reusing {root}")
    else:
        env = fresh_env(work, "lore-search")
        secs, _s = timed_import(env, {"claude_code": src})
        print(f"\nsearch index: {sessions} sessions ({mb:.0f} MB) imported in {secs:.1f} s ({mb / secs:.1f} MB/s)")
    conn = index.connect(root)
    print(f"  sessions in the index: {conn.execute('SELECT count(*) FROM sessions').fetchone()[0]}")
    planted = json.loads((src / "planted_terms.json").read_text())
    words = ["retry backoff", "quixotrel", "vellumkite", "brazzoflint", "migration schema", "timeout",
             "\"cache token\"", "parser", "socket buffer", "quixotrel retry"]
    codes = ["test_client.py", "get_user", "src/app"]
    pool = words + codes
    clients = ["internal"]
    times: list[float] = []
    per: dict[str, list[float]] = {}
    rnd = random.Random(1)
    for _ in range(queries):
        q = rnd.choice(pool)
        t = time.perf_counter()
        hits = search.search(conn, q, clients, limit=10)
        dt = (time.perf_counter() - t) * 1000
        times.append(dt)
        per.setdefault(q, []).append(dt)
        _ = hits
    times.sort()
    p50, p95 = times[len(times) // 2], times[int(len(times) * 0.95) - 1]
    print(f"  {queries} queries: p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {times[-1]:.1f} ms "
          f"(targets p50 ≤ 20, p95 ≤ 100)")
    for q, v in sorted(per.items()):
        print(f"    {q:<20} median {statistics.median(v):7.1f} ms  ({len(search.search(conn, q, clients, limit=10))}"
              f" hits shown)")
    print(f"  planted terms: { {k: v for k, v in planted.items() if not isinstance(v, dict)} }"[:300])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--mean-kb", type=int, default=200)
    ap.add_argument("--search-sessions", type=int, default=20000)
    ap.add_argument("--search-mean-kb", type=int, default=10)
    ap.add_argument("--skip-search", action="store_true")
    ap.add_argument("--skip-import", action="store_true")
    ap.add_argument("--reuse-search", action="store_true", help="Query the last run's search archive again.")
    ap.add_argument("--work", type=Path, default=Path("/tmp/lore-bench"))
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    if not a.skip_import:
        bench_import(a.work, a.sessions, a.mean_kb)
    if not a.skip_search:
        bench_search(a.work, a.search_sessions, a.search_mean_kb, reuse=a.reuse_search)


if __name__ == "__main__":
    main()
