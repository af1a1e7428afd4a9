"""Do LORE's token totals agree with ccusage (the community reference for Claude Code usage) on the same corpus?

    .venv/bin/python benchmarks/lore_vs_ccusage.py CORPUS_DIR [--ccusage PATH] [--work DIR]

CORPUS_DIR is a Claude Code home (`projects/…`), e.g. one written by shared/tools/gen_claude_corpus.py. The script
imports it into a throwaway archive, runs `ccusage claude daily` and `ccusage claude session` (`--offline -z UTC`,
CLAUDE_CONFIG_DIR=CORPUS_DIR), and compares per UTC day and per session. Install ccusage offline from the npm
registry with `npm install ccusage@20.0.24 @ccusage/ccusage-linux-x64@20.0.24` (20.x needs its native binary).

Known difference, by design: ccusage's *session* report counts a `/btw` side question's replay of the parent
message (same message.id, new requestId, sidechain) a second time; its *daily* report and LORE count it once.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FIELDS = (("input_tokens", "inputTokens"), ("output_tokens", "outputTokens"),
          ("cache_creation_input_tokens", "cacheCreationTokens"), ("cache_read_input_tokens", "cacheReadTokens"))


def ccusage(bin_: str, what: str, corpus: Path) -> dict:  # type: ignore[type-arg]
    env = {**os.environ, "CLAUDE_CONFIG_DIR": str(corpus), "HOME": "/tmp/ccusage-home", "TZ": "UTC"}
    out = subprocess.run([bin_, "claude", what, "--json", "--offline", "-z", "UTC"], env=env, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--ccusage", default="/tmp/ccusage/node_modules/.bin/ccusage")
    ap.add_argument("--work", type=Path, default=Path("/tmp/lore-vs-ccusage"))
    a = ap.parse_args()
    from services.lore import index, run, usage

    shutil.rmtree(a.work, ignore_errors=True)
    (a.work / "lore").mkdir(parents=True)
    env = run.make_env(a.work / "lore", a.work / "key")
    s = run.run_import(env, {"claude_code": a.corpus})
    conn = index.connect(a.work / "lore")
    ours_day = {r.group: r.to_dict() for r in usage.report(conn, "day")}
    ours_session = {r.group.split(":", 1)[1]: r.to_dict() for r in usage.report(conn, "session")}
    print(f"LORE: {len(ours_session)} sessions imported ({len(s.errors)} errors), {len(ours_day)} days")

    daily = ccusage(a.ccusage, "daily", a.corpus)["daily"]
    diff_days = [d["date"] for d in daily
                 if tuple(ours_day.get(d["date"], {}).get(k, 0) for k, _ in FIELDS) != tuple(d[c] for _, c in FIELDS)]
    print(f"ccusage daily: {len(daily)} days; days whose four token counts differ from LORE: {len(diff_days)}"
          + (f" {diff_days[:5]}" if diff_days else " (all equal)"))
    tot_cc = tuple(sum(d[c] for d in daily) for _, c in FIELDS)
    tot_us = tuple(sum(r[k] for r in ours_day.values()) for k, _ in FIELDS)
    print(f"  totals ccusage {tot_cc}\n  totals LORE    {tot_us}  -> {'EQUAL' if tot_cc == tot_us else 'DIFFERENT'}")

    cost_cc = sum(float(d.get("totalCost") or 0) for d in daily)
    cost_us = sum(r["cost_usd"] for r in ours_day.values())
    unpriced = sum(r["unpriced_calls"] for r in ours_day.values())
    print(f"  cost ccusage ${cost_cc:,.4f}   LORE ${cost_us:,.4f} (pinned litellm 1.106.9 table; {unpriced} call(s) of "
          f"models it does not price are left out)")
    sessions = ccusage(a.ccusage, "session", a.corpus)["sessions"]
    folded: dict[str, list[int]] = {}
    for row in sessions:  # ccusage names flat agent-<hex>.jsonl files as their own sessions: fold them back
        sid = row["sessionId"]
        if sid not in ours_session:
            f = next((p for p in (a.corpus / "projects").glob(f"*/{sid}.jsonl")), None)
            if f is not None:
                first = next((ln for ln in f.read_text(errors="replace").splitlines() if '"sessionId"' in ln), "")
                with contextlib.suppress(ValueError):
                    sid = json.loads(first).get("sessionId", sid)
        acc = folded.setdefault(sid, [0, 0, 0, 0])
        for i, (_, c) in enumerate(FIELDS):
            acc[i] += row[c]
    equal = sum(1 for sid, v in folded.items()
                if tuple(v) == tuple(ours_session.get(sid, {}).get(k, 0) for k, _ in FIELDS))
    print(f"ccusage session: {len(folded)} sessions after folding agent files; equal to LORE: {equal}"
          f" (the rest hold /btw replays, which ccusage's session report counts twice)")
    return 0 if tot_cc == tot_us and not diff_days else 1


if __name__ == "__main__":
    sys.exit(main())
