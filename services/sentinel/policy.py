"""SENTINEL policy: rules are data (policies/sentinel.toml), validated strictly at load. Stdlib only.

The default policy lists every built-in rule. A user policy file may override an existing rule's `severity`,
`reason`, `alternative`, `params` or `enabled` (by `id`), and add rules of the generic classes `command`,
`path` and `pattern`. Any problem raises `PolicyError` with one line naming the file, the rule and the problem.
"""

from __future__ import annotations

import hashlib
import json
import os
import re

from services.sentinel.model import SEVERITIES
from services.sentinel.rules import CLASSES, GENERIC, REQUIRED_PARAMS, check_glob

TYPE_CHECKING = False  # importing typing costs the hook ~3 ms; mypy still sees these names
if TYPE_CHECKING:
    from typing import Any

DEFAULT_POLICY = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                              "policies", "sentinel.toml")

_KEYS = frozenset({"id", "class", "severity", "reason", "alternative", "params", "enabled"})
_TOP_KEYS = frozenset({"version", "rule"})
_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


class PolicyError(Exception):
    """A policy file that cannot be used: one line naming the file, the rule and the problem."""


class Rule:
    __slots__ = ("alternative", "cls", "enabled", "id", "params", "reason", "severity", "source")

    def __init__(self, id: str, cls: str, severity: str, reason: str, alternative: str = "",
                 params: dict[str, Any] | None = None, enabled: bool = True, source: str = "") -> None:
        self.id, self.cls, self.severity = id, cls, severity
        self.reason, self.alternative = reason, alternative
        self.params: dict[str, Any] = params or {}
        self.enabled, self.source = enabled, source

    def __repr__(self) -> str:
        return f"Rule({self.id!r}, {self.cls!r}, {self.severity!r}{'' if self.enabled else ', disabled'})"


class Policy:
    def __init__(self, rules: list[Rule], sources: list[str]) -> None:
        self.rules = tuple(rules)
        self.sources = tuple(sources)
        canon = json.dumps([[r.id, r.cls, r.severity, r.reason, r.alternative, r.params, r.enabled] for r in rules],
                           sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
        self.hash = hashlib.sha256(canon.encode()).hexdigest()
        self.active = tuple(r for r in self.rules if r.enabled and r.severity != "allow")

    def rule(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)


def _err(path: str, rule: object, problem: str) -> PolicyError:
    where = f"rule {rule!r}" if rule is not None else "policy"
    return PolicyError(" ".join(f"{path}: {where}: {problem}".split()))


def _check_params(path: str, rid: str, cls: str, params: Any) -> dict[str, Any]:
    if not isinstance(params, dict):
        raise _err(path, rid, f"params must be a table, not {type(params).__name__}")
    schema = CLASSES[cls].params
    for key, value in params.items():
        kind = schema.get(key)
        if kind is None:
            allowed = ", ".join(sorted(schema)) or "none"
            raise _err(path, rid, f"unknown param {key!r} for class {cls!r} (allowed: {allowed})")
        if kind in ("strs", "globs") or (kind == "strs_or_str" and not isinstance(value, str)):
            if not isinstance(value, list) or not all(isinstance(x, str) and x for x in value):
                raise _err(path, rid, f"param {key!r} must be a list of non-empty strings")
            if kind == "globs":
                for g in value:
                    try:
                        check_glob(g)
                    except re.error as exc:
                        raise _err(path, rid, f"param {key!r}: bad glob {g!r} ({exc})") from None
        elif kind in ("str", "regex", "strs_or_str"):
            if not isinstance(value, str) or not value:
                raise _err(path, rid, f"param {key!r} must be a non-empty string")
            if kind == "regex":
                try:
                    re.compile(value)
                except re.error as exc:
                    raise _err(path, rid, f"param {key!r}: bad regex {value!r} ({exc})") from None
    return dict(params)


def _read(path: str) -> dict[str, Any]:
    import tomllib

    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise _err(path, None, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _err(path, None, f"cannot read ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise _err(path, None, f"not valid TOML ({exc})") from None


def _rules_of(path: str, data: dict[str, Any], existing: dict[str, Rule] | None) -> list[tuple[dict[str, Any], str]]:
    """Validated raw rule tables of one file (existing: the default rules a user file may override)."""
    for key in data:
        if key not in _TOP_KEYS:
            raise _err(path, None, f"unknown top-level key {key!r} (allowed: version, rule)")
    version = data.get("version", 1)
    if version != 1 or isinstance(version, bool):
        raise _err(path, None, f"unsupported version {version!r} (expected 1)")
    raw_rules = data.get("rule", [])
    if not isinstance(raw_rules, list):
        raise _err(path, None, "`rule` must be an array of tables ([[rule]])")
    seen: set[str] = set()
    out = []
    for n, raw in enumerate(raw_rules, 1):
        if not isinstance(raw, dict):
            raise _err(path, f"#{n}", "each [[rule]] must be a table")
        rid = raw.get("id")
        if not isinstance(rid, str) or not _ID.fullmatch(rid):
            raise _err(path, rid if isinstance(rid, str) else f"#{n}",
                       "id must be a string of lowercase letters, digits, '.', '_' or '-'")
        if rid in seen:
            raise _err(path, rid, "duplicate id in this file")
        seen.add(rid)
        for key in raw:
            if key not in _KEYS:
                raise _err(path, rid, f"unknown key {key!r} (allowed: {', '.join(sorted(_KEYS))})")
        base = existing.get(rid) if existing is not None else None
        cls = raw.get("class", base.cls if base else None)
        if not isinstance(cls, str):
            raise _err(path, rid, "class is missing" if cls is None else "class must be a string")
        if cls not in CLASSES:
            raise _err(path, rid, f"unknown class {cls!r}")
        if base is not None and cls != base.cls:
            raise _err(path, rid, f"class cannot change from {base.cls!r} to {cls!r}; use a new id")
        if base is None and existing is not None and cls not in GENERIC:
            raise _err(path, rid, f"new rules must use a generic class (command, path, pattern), not {cls!r}")
        sev = raw.get("severity", base.severity if base else None)
        if sev is None:
            raise _err(path, rid, "severity is missing")
        if sev not in SEVERITIES:
            raise _err(path, rid, f"unknown severity {sev!r} (allowed: {', '.join(SEVERITIES)})")
        for key in ("reason", "alternative"):
            if key in raw and not isinstance(raw[key], str):
                raise _err(path, rid, f"{key} must be a string")
        if base is None and not (isinstance(raw.get("reason"), str) and raw["reason"].strip()):
            raise _err(path, rid, "reason is missing")
        if "enabled" in raw and not isinstance(raw["enabled"], bool):
            raise _err(path, rid, "enabled must be true or false")
        if "params" in raw:
            _check_params(path, rid, cls, raw["params"])
        if base is None:
            for key in REQUIRED_PARAMS.get(cls, ()):
                if key not in raw.get("params", {}):
                    raise _err(path, rid, f"class {cls!r} needs params.{key}")
        out.append((raw, cls))
    return out


def _load(dpath: str, upath: str | None) -> Policy:
    rules: dict[str, Rule] = {}
    for raw, cls in _rules_of(dpath, _read(dpath), None):
        rules[raw["id"]] = Rule(raw["id"], cls, raw["severity"], raw.get("reason", ""), raw.get("alternative", ""),
                                dict(raw.get("params", {})), raw.get("enabled", True), dpath)
    sources = [dpath]
    if upath:
        sources.append(upath)
        for raw, cls in _rules_of(upath, _read(upath), rules):
            rid = raw["id"]
            base = rules.get(rid)
            if base is None:
                rules[rid] = Rule(rid, cls, raw["severity"], raw["reason"], raw.get("alternative", ""),
                                  dict(raw.get("params", {})), raw.get("enabled", True), upath)
                continue
            params = dict(base.params)
            params.update(raw.get("params", {}))
            rules[rid] = Rule(rid, cls, raw.get("severity", base.severity), raw.get("reason", base.reason),
                              raw.get("alternative", base.alternative), params, raw.get("enabled", base.enabled),
                              upath)
    return Policy(list(rules.values()), sources)


# The hook loads the policy on every call; `tomllib` alone costs more to import than the rest of the judge. A
# validated policy is therefore cached as JSON in $AISTACK_HOME/sentinel/ (only when that directory exists),
# keyed by the sha256 of both files' bytes and of this loader's version; any mismatch re-parses the TOML.
_CACHE_VERSION = "sentinel-policy-cache-1"


def _cache_file() -> str | None:
    explicit = os.environ.get("SENTINEL_POLICY_CACHE", "").strip()
    if explicit:
        return None if explicit == "off" else explicit
    from services.sentinel.paths import sentinel_dir

    return os.path.join(sentinel_dir(), "policy-cache.json")


def _cache_key(dpath: str, upath: str | None) -> str | None:
    h = hashlib.sha256(_CACHE_VERSION.encode())
    for code in (__file__, os.path.join(os.path.dirname(__file__), "rules.py")):
        try:
            st = os.stat(code)
        except OSError:
            return None
        h.update(f"{code}:{st.st_mtime_ns}:{st.st_size}".encode())
    for p in (dpath, upath):
        if p is None:
            continue
        try:
            with open(p, "rb") as fh:
                data = fh.read()
        except OSError:
            return None
        h.update(b"\0" + os.path.abspath(p).encode("utf-8", "surrogateescape") + b"\0" + data)
    return h.hexdigest()


def _from_cache(path: str, key: str) -> Policy | None:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        if data.get("key") != key:
            return None
        rules = [Rule(r["id"], r["cls"], r["severity"], r["reason"], r["alternative"], r["params"], r["enabled"],
                      r["source"]) for r in data["rules"]]
        if any(r.cls not in CLASSES or r.severity not in SEVERITIES for r in rules):
            return None
        return Policy(rules, list(data["sources"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _to_cache(path: str, key: str, policy: Policy) -> None:
    if not os.path.isdir(os.path.dirname(path) or "."):
        return
    data = {"key": key, "sources": list(policy.sources),
            "rules": [{"id": r.id, "cls": r.cls, "severity": r.severity, "reason": r.reason,
                       "alternative": r.alternative, "params": r.params, "enabled": r.enabled, "source": r.source}
                      for r in policy.rules]}
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)
    except OSError:
        try:  # noqa: SIM105 - contextlib is not worth its import on the hook path
            os.unlink(tmp)
        except OSError:
            pass


_LOADED: dict[str, Policy] = {}  # cache key (code and policy files, by content) → the policy they make


def load_policy(user_path: str | os.PathLike[str] | None = None, *,
                default_path: str | os.PathLike[str] = DEFAULT_POLICY) -> Policy:
    """The default policy with the user's file (if any) on top. Raises PolicyError."""
    dpath = os.fspath(default_path)
    upath = os.fspath(user_path) if user_path else None
    cache = _cache_file()
    key = _cache_key(dpath, upath) if cache else None
    if key and key in _LOADED:  # the judge daemon's children: loaded once in the parent, same files, same bytes
        return _LOADED[key]
    if cache and key:
        hit = _from_cache(cache, key)
        if hit is not None:
            _LOADED[key] = hit
            return hit
    policy = _load(dpath, upath)
    if cache and key:
        _to_cache(cache, key, policy)
        _LOADED[key] = policy
    return policy


def check_policy(path: str | os.PathLike[str]) -> list[str]:
    """Problems of a user policy file on top of the default policy (empty: fine)."""
    try:
        load_policy(path)
    except PolicyError as exc:
        return [str(exc)]
    return []
