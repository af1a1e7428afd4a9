"""Throughput of LORE's redactor (services/lore/redact.py) on Claude Code transcripts.

Generates a corpus with shared/tools/gen_claude_corpus.py (default 100 sessions of mean 500 KB: ~46 MB of JSONL)
and reads it two ways: the strings of every message's content, as the archive hands them to `Redactor.walk` (one
`text()` call per string), and the raw JSONL lines (one call per line). Thinking signatures are dropped first, as
the importers drop them. Times `Redactor.text` over the clean text, then over a copy with a few hundred planted
secrets of every rule, and checks that no planted secret survives. MB/s is the best of --rounds, in CPU time of
this process (wall time in brackets; the two differ on a busy machine).
Target: >= 25 MB/s single core on the clean text (one stage of an import that must run at >= 5 MB/s end to end).

    .venv/bin/python benchmarks/lore_redact.py [--sessions 100] [--mean-kb 500] [--rounds 3] [--plant 300]
                                               [--corpus DIR]   (an existing corpus; otherwise a temporary one)
"""

from __future__ import annotations

import argparse
import base64
import collections
import json
import random
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.lore.redact import RULES, Redactor  # noqa: E402

GEN = ROOT.parent / "shared" / "tools" / "gen_claude_corpus.py"
TARGET = 25.0
ALNUM = string.ascii_letters + string.digits
UPPER_DIGITS = string.ascii_uppercase + string.digits


def generate(out: Path, sessions: int, mean_kb: int) -> None:
    subprocess.run([sys.executable, str(GEN), "--out", str(out), "--sessions", str(sessions), "--mean-kb",
                    str(mean_kb)], check=True, capture_output=True)


def _drop_signatures(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _drop_signatures(v) for k, v in obj.items() if k != "signature"}
    if isinstance(obj, list):
        return [_drop_signatures(v) for v in obj]
    return obj


def _strings(obj: Any, out: list[str]) -> None:
    if isinstance(obj, str):
        out.append(obj)
    elif isinstance(obj, dict):
        for v in obj.values():
            _strings(v, out)
    elif isinstance(obj, list):
        for v in obj:
            _strings(v, out)


def load(corpus: Path) -> tuple[list[str], list[str]]:
    """(content strings, JSONL lines), signatures dropped from both."""
    fields: list[str] = []
    lines: list[str] = []
    for path in sorted(corpus.rglob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                obj = _drop_signatures(json.loads(line))
            except ValueError:
                continue  # the generator's deliberately truncated lines
            lines.append(json.dumps(obj, ensure_ascii=False))
            message = obj.get("message")
            if isinstance(message, dict):
                _strings(message.get("content"), fields)
    return fields, lines


# ------------------------------------------------------------------------------------------------ planted secrets

def _secret_makers(rnd: random.Random) -> dict[str, Callable[[], tuple[str, str]]]:
    """rule -> a maker of (text to plant, the secret in it). Built at run time: no secret literal in this file."""

    def r(n: int, alphabet: str = ALNUM) -> str:
        # With a digit and a letter (where the alphabet has them), as generated credentials have.
        s = "".join(rnd.choice(alphabet) for _ in range(n - 2))
        digit = rnd.choice([c for c in alphabet if c.isdigit()] or alphabet)
        letter = rnd.choice([c for c in alphabet if c.isalpha()] or alphabet)
        return s[: n // 2] + digit + letter + s[n // 2:]

    def pair(fmt: str, secret: str) -> tuple[str, str]:
        return fmt.format(secret), secret

    def jwt() -> str:
        b64 = base64.urlsafe_b64encode
        head = b64(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=").decode()
        body = b64(json.dumps({"sub": r(10)}).encode()).rstrip(b"=").decode()
        return f"{head}.{body}.{r(43)}"

    def pem() -> str:
        d = "-" * 5
        return f"{d}BEGIN RSA PRIVATE KEY{d}\n" + "\n".join(r(64, ALNUM + "+/") for _ in range(8)) \
            + f"\n{d}END RSA PRIVATE KEY{d}"

    return {
        "anthropic-key": lambda: pair("export ANTHROPIC_API_KEY={}", "sk-ant-api03-" + r(93, ALNUM + "-_") + "AA"),
        "openai-key": lambda: pair("OPENAI_API_KEY={}", "sk-proj-" + r(60, ALNUM + "-_")),
        "stripe-key": lambda: pair("stripe.api_key = '{}'", "sk_" + "live_" + r(24)),
        "github-token": lambda: pair("GH_TOKEN={} gh pr view", "ghp_" + r(36)),
        "slack-token": lambda: pair("bot token {}", "xoxb-" + r(12, string.digits) + "-" + r(24)),
        "slack-webhook": lambda: pair("https://hooks.slack.com/services/{}",
                                      "T" + r(8, string.ascii_uppercase) + "/B" + r(10, string.ascii_uppercase)
                                      + "/" + r(24)),
        "google-api-key": lambda: pair("?key={}&q=paris", "AIza" + r(35)),
        "aws-access-key": lambda: pair("aws_access_key_id = {}", "AKIA" + r(16, UPPER_DIGITS)),
        "aws-secret": lambda: pair("aws_secret_access_key = {}", r(40, ALNUM + "/+")),
        "private-key": lambda: pair("\n{}\n", pem()),
        "jwt": lambda: pair("Cookie: session={}; HttpOnly", jwt()),
        "url-password": lambda: pair("https://deploy:{}@pypi.acme.dev/simple/", r(16)),
        "dsn-password": lambda: pair("DATABASE_URL=postgres://app:{}@db:5432/app", r(16)),
        "bearer": lambda: pair('-H "Authorization: Bearer {}"', r(40)),
        "basic-auth": lambda: pair("Authorization: Basic {}", base64.b64encode(f"u:{r(12)}".encode()).decode()),
        "assignment": lambda: pair("PASSWORD={}", r(14, ALNUM + "!#%")),
        "entropy": lambda: pair(" signing secret is {} ", r(48)),
    }


def plant(texts: list[str], n: int, seed: int = 1) -> tuple[list[str], list[tuple[str, str]]]:
    """A copy of `texts` with `n` secrets (every rule in turn) inserted at random word breaks."""
    rnd = random.Random(seed)
    makers = _secret_makers(rnd)
    out = list(texts)
    planted = []
    for k in range(n):
        rule = RULES[k % len(RULES)]
        snippet, secret = makers[rule]()
        i = rnd.randrange(len(out))
        text = out[i]
        cut = text.rfind(" ", 0, rnd.randrange(len(text) + 1)) + 1
        out[i] = text[:cut] + " " + snippet + " " + text[cut:]
        planted.append((rule, secret))
    return out, planted


# ------------------------------------------------------------------------------------------------ timing

def time_text(texts: list[str], rounds: int) -> tuple[float, float, collections.Counter[str], list[str]]:
    """(best CPU seconds, best wall seconds, counts of one round, outputs of one round)."""
    best_cpu = best_wall = float("inf")
    counts: collections.Counter[str] = collections.Counter()
    outs: list[str] = []
    for _ in range(rounds):
        red = Redactor(b"\x01" * 32)
        text = red.text
        c0, w0 = time.process_time(), time.perf_counter()
        outs = [text(s) for s in texts]
        best_cpu = min(best_cpu, time.process_time() - c0)
        best_wall = min(best_wall, time.perf_counter() - w0)
        counts = red.counts
    return best_cpu, best_wall, counts, outs


def report(name: str, texts: list[str], rounds: int, planted: list[tuple[str, str]] | None = None) -> float:
    mb = sum(len(s.encode("utf-8", "surrogatepass")) for s in texts) / 1e6
    cpu, wall, counts, outs = time_text(texts, rounds)
    print(f"{name:16s} {mb:6.1f} MB in {len(texts):6d} calls: {mb / cpu:6.1f} MB/s  ({mb / wall:.1f} wall)  "
          f"redacted {sum(counts.values())}: {dict(sorted(counts.items()))}")
    if planted is not None:
        blob = "\n".join(outs)
        left = [(rule, secret[:6]) for rule, secret in planted if secret in blob]
        by_rule = collections.Counter(rule for rule, _ in planted)
        print(f"{'':16s} planted {len(planted)} ({len(by_rule)} rules), left after redaction: {left or 'none'}")
    return mb / cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=100)
    ap.add_argument("--mean-kb", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--plant", type=int, default=300)
    ap.add_argument("--corpus", type=Path, help="an existing gen_claude_corpus.py output to read instead")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="lore-redact-bench-") as tmp:
        corpus = args.corpus
        if corpus is None:
            corpus = Path(tmp) / "corpus"
            t0 = time.perf_counter()
            generate(corpus, args.sessions, args.mean_kb)
            print(f"generated {args.sessions} sessions (mean {args.mean_kb} KB) in {time.perf_counter() - t0:.1f} s")
        fields, lines = load(corpus)
    rates = [report("fields, clean", fields, args.rounds), report("lines, clean", lines, args.rounds)]
    for name, texts in (("fields, planted", fields), ("lines, planted", lines)):
        dirty, planted = plant(texts, args.plant)
        report(name, dirty, args.rounds, planted)
    ok = min(rates) >= TARGET
    print(f"target >= {TARGET:.0f} MB/s on clean text: {'met' if ok else 'NOT met'} (slowest {min(rates):.1f} MB/s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
