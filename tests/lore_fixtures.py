"""Shared set-up for LORE tests: a home with the platform fixtures in their real on-disk places, a clients file,
and the fixed price table from the fixtures' README (tests never depend on a live price list)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from services.lore import run
from services.lore.pricing import PriceTable

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures" / "lore"
GEN = ROOT.parent / "shared" / "tools" / "gen_claude_corpus.py"
CLAUDE_SID = "7f3c9a2e-4b1d-4e8a-9c6f-2d5e8b1a0c34"
CODEX_SID = "0195a3c4-7e21-7b9d-8f10-3c2a4e5b6d71"
CLAUDE_PROJECT = "-home-dev-projects-acme-api-v2"

TEST_PRICES = PriceTable.from_dict({"models": {
    "claude-sonnet-4-5-20250929": {"input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05,
                                   "cache_creation_input_token_cost": 3.75e-06,
                                   "cache_read_input_token_cost": 3e-07},
    "claude-haiku-4-5-20251001": {"input_cost_per_token": 1e-06, "output_cost_per_token": 5e-06,
                                  "cache_creation_input_token_cost": 1.25e-06,
                                  "cache_read_input_token_cost": 1e-07},
    "gpt-5-codex": {"input_cost_per_token": 1.25e-06, "output_cost_per_token": 1e-05,
                    "cache_read_input_token_cost": 1.25e-07},
}})

CLIENTS_YAML = """\
default: internal
clients:
  acme:
    paths: [/home/dev/projects/acme_api.v2]
    access_level: confidential
    data_classification: client-confidential
  beta: {}
"""


@dataclass
class LoreHome:
    tmp: Path

    @property
    def claude(self) -> Path:
        return self.tmp / "claude"

    @property
    def codex(self) -> Path:
        return self.tmp / "codex"

    @property
    def lore(self) -> Path:
        return self.tmp / "lore"

    @property
    def audit(self) -> Path:
        return self.tmp / "audit"

    @property
    def claude_file(self) -> Path:
        return self.claude / "projects" / CLAUDE_PROJECT / f"{CLAUDE_SID}.jsonl"

    @property
    def codex_file(self) -> Path:
        return self.codex / "sessions" / "2026" / "03" / "15" / f"rollout-2026-03-15T14-02-11-{CODEX_SID}.jsonl"

    def homes(self) -> dict[str, Path]:
        return {"claude_code": self.claude, "codex": self.codex}

    def env(self, prices: PriceTable = TEST_PRICES) -> run.Env:
        return run.make_env(self.lore, self.tmp / "redaction.key", audit_dir=self.audit, prices=prices)

    def run(self, exports: list[tuple[str, Path]] | None = None, client: str | None = None) -> run.Summary:
        return run.run_import(self.env(), self.homes(), exports or [], client=client)

    def git(self, client: str, *args: str) -> str:
        return subprocess.run(["git", "-C", str(self.lore / client), *args], capture_output=True, text=True,
                              check=True).stdout

    def yaml_files(self, client: str) -> list[Path]:
        return sorted((self.lore / client / "sessions").rglob("*.yaml"))


def make_home(tmp: Path, clients_yaml: str = CLIENTS_YAML) -> LoreHome:
    h = LoreHome(tmp)
    h.claude_file.parent.mkdir(parents=True)
    shutil.copy(FIXTURES / "claude_code_session.jsonl", h.claude_file)
    h.codex_file.parent.mkdir(parents=True)
    shutil.copy(FIXTURES / "codex_rollout.jsonl", h.codex_file)
    h.lore.mkdir()
    (h.lore / "clients.yaml").write_text(clients_yaml)
    return h


def generate(out: Path, sessions: int, mean_kb: int, seed: int = 7, extra: tuple[str, ...] = ()) -> Path:
    """A Claude Code corpus in the real layout, with `expected.json` (see shared/tools/README.md)."""
    subprocess.run([sys.executable, str(GEN), "--out", str(out), "--sessions", str(sessions), "--mean-kb",
                    str(mean_kb), "--seed", str(seed), *extra], check=True, capture_output=True)
    return out
