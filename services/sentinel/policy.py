"""SENTINEL policy: rules are data (policies/sentinel.toml), validated strictly at load. Stdlib only.

(Early version: final signatures; validation grows with rules.py.)
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from pathlib import Path
from typing import Any

from services.sentinel.model import SEVERITIES

DEFAULT_POLICY = Path(__file__).resolve().parents[2] / "policies" / "sentinel.toml"


class PolicyError(Exception):
    """A policy file that cannot be used: one line naming the file, the rule and the problem."""


class Rule:
    __slots__ = ("alternative", "cls", "enabled", "id", "params", "reason", "severity", "source")

    def __init__(self, id: str, cls: str, severity: str, reason: str, alternative: str = "",
                 params: dict[str, Any] | None = None, enabled: bool = True, source: str = "") -> None:
        self.id, self.cls, self.severity = id, cls, severity
        self.reason, self.alternative = reason, alternative
        self.params = params or {}
        self.enabled, self.source = enabled, source


class Policy:
    def __init__(self, rules: list[Rule], sources: list[str]) -> None:
        self.rules = tuple(rules)
        self.sources = tuple(sources)
        canon = json.dumps([[r.id, r.cls, r.severity, r.reason, r.alternative, r.params, r.enabled] for r in rules],
                           sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
        self.hash = hashlib.sha256(canon.encode()).hexdigest()


def load_policy(user_path: str | Path | None = None, *, default_path: Path = DEFAULT_POLICY) -> Policy:
    rules: list[Rule] = []
    for path in [default_path] + ([Path(user_path)] if user_path else []):
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise PolicyError(f"{path}: cannot load: {exc}") from None
        for raw in data.get("rule", []):
            if raw.get("severity") not in SEVERITIES:
                raise PolicyError(f"{path}: rule {raw.get('id')!r}: unknown severity {raw.get('severity')!r}")
            rules.append(Rule(raw["id"], raw["class"], raw["severity"], raw.get("reason", ""),
                              raw.get("alternative", ""), raw.get("params"), raw.get("enabled", True), str(path)))
    return Policy(rules, [str(default_path)] + ([str(user_path)] if user_path else []))


def check_policy(path: str | Path) -> list[str]:
    try:
        load_policy(path)
    except PolicyError as exc:
        return [str(exc)]
    return []


def default_user_policy_path() -> Path | None:
    """`$SENTINEL_POLICY`, else `$AISTACK_HOME/sentinel-policy.toml` when it exists."""
    env = os.environ.get("SENTINEL_POLICY")
    if env:
        return Path(env)
    home = os.environ.get("AISTACK_HOME")
    if home and (Path(home) / "sentinel-policy.toml").is_file():
        return Path(home) / "sentinel-policy.toml"
    return None
