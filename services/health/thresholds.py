"""Thresholds for every check, from policies/health.toml with a user file over it. Stdlib only (tomllib).

Strict on purpose: a misspelt key in a monitoring config silently keeps the default, so unknown keys and wrong
types are errors naming the file and the key.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

DEFAULTS_FILE = Path(__file__).resolve().parents[2] / "policies" / "health.toml"


class ThresholdsError(Exception):
    """The thresholds file is wrong; the message names the file and the key."""


@dataclass(frozen=True)
class Memory:
    used_warn: float = 80.0
    available_crit: float = 5.0
    clear_margin: float = 5.0
    pressure_some_avg60_warn: float = 10.0
    pressure_full_avg60_crit: float = 5.0
    oom_window_minutes: float = 15.0


@dataclass(frozen=True)
class Swap:
    used_warn: float = 90.0
    used_crit: float = 98.0
    clear_margin: float = 2.0
    swapin_warn: float = 500.0


@dataclass(frozen=True)
class Disk:
    paths: tuple[str, ...] = ("/", "/var/lib/docker", "/mnt/c")
    used_warn: float = 90.0
    used_crit: float = 98.0
    free_crit_gib: float = 5.0
    clear_margin: float = 2.0
    hours_to_full_warn: float = 24.0
    hours_to_full_crit: float = 6.0
    fill_clear_margin_hours: float = 6.0
    min_fill_interval_seconds: float = 60.0


@dataclass(frozen=True)
class Wsl:
    cap_tolerance_pct: float = 10.0


@dataclass(frozen=True)
class Docker:
    storm_window_minutes: float = 10.0
    storm_warn: int = 3
    storm_crit: int = 10
    restarting_crit_minutes: float = 5.0
    stale_days: float = 7.0
    timeout_seconds: float = 2.0


@dataclass(frozen=True)
class Processes:
    top: int = 5
    growth_warn_mib: float = 1024.0
    growth_crit_mib: float = 4096.0
    growth_window_minutes: float = 15.0


@dataclass(frozen=True)
class Alerting:
    pending_seconds: float = 60.0
    repeat_seconds: float = 3600.0
    notify_level: str = "warn"
    events_keep_days: float = 30.0


@dataclass(frozen=True)
class Thresholds:
    memory: Memory = field(default_factory=Memory)
    swap: Swap = field(default_factory=Swap)
    disk: Disk = field(default_factory=Disk)
    wsl: Wsl = field(default_factory=Wsl)
    docker: Docker = field(default_factory=Docker)
    processes: Processes = field(default_factory=Processes)
    alerting: Alerting = field(default_factory=Alerting)
    sources: tuple[str, ...] = ()  # files read, defaults first


def user_file() -> Path:
    env = os.environ.get("WSL_AUDIT_CONFIG")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return Path(base) / "wsl-audit" / "health.toml"


def load(path: Path | None = None, *, defaults: Path = DEFAULTS_FILE) -> Thresholds:
    """The defaults file, then `path` (default: WSL_AUDIT_CONFIG or ~/.config/wsl-audit/health.toml) over it.

    A user file named explicitly (argument or WSL_AUDIT_CONFIG) must exist; the default location may be absent.
    """
    explicit = path is not None or bool(os.environ.get("WSL_AUDIT_CONFIG"))
    path = path or user_file()
    t = _apply(Thresholds(), _read(defaults), defaults)
    sources = [str(defaults)]
    if path.exists():
        t = _apply(t, _read(path), path)
        sources.append(str(path))
    elif explicit:
        raise ThresholdsError(f"{path}: no such thresholds file; create it or unset WSL_AUDIT_CONFIG")
    return replace(t, sources=tuple(sources))


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ThresholdsError(f"{path}: no such thresholds file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ThresholdsError(f"{path}: not valid TOML ({exc}); fix the file or remove it") from None


def _apply(t: Thresholds, data: dict[str, Any], path: Path) -> Thresholds:
    changes: dict[str, Any] = {}
    known = {f.name: f for f in fields(Thresholds) if f.name != "sources"}
    for section, values in data.items():
        if section == "version":
            if values != 1:
                raise ThresholdsError(f"{path}: version {values!r} is not supported (this wsl-audit reads 1)")
            continue
        if section not in known:
            raise ThresholdsError(f"{path}: unknown section [{section}]; known: {', '.join(sorted(known))}")
        if not isinstance(values, dict):
            raise ThresholdsError(f"{path}: {section} must be a [{section}] table")
        current = getattr(t, section)
        changes[section] = replace(current, **{k: _coerce(path, section, current, k, v) for k, v in values.items()})
    t = replace(t, **changes)
    _validate(t, path)
    return t


def _coerce(path: Path, section: str, current: Any, key: str, value: Any) -> Any:
    names = {f.name for f in fields(current)}
    if key not in names:
        raise ThresholdsError(f"{path}: unknown key {section}.{key}; known: {', '.join(sorted(names))}")
    default = getattr(current, key)
    where = f"{path}: {section}.{key} = {value!r}"  # as the user wrote it, before int → float
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, tuple):
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        value = tuple(value) if ok else value
    else:
        ok = isinstance(value, str)
    if not ok:
        raise ThresholdsError(f"{where}: expected {type(default).__name__} like {default!r}")
    if isinstance(value, float) and math.isnan(value):  # TOML allows nan; every comparison with it is False
        raise ThresholdsError(f"{where}: use a number")
    if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
        raise ThresholdsError(f"{where}: must not be negative")
    return value


def _validate(t: Thresholds, path: Path) -> None:
    pairs = [("swap.used_warn", t.swap.used_warn, "swap.used_crit", t.swap.used_crit),
             ("disk.used_warn", t.disk.used_warn, "disk.used_crit", t.disk.used_crit),
             ("disk.hours_to_full_crit", t.disk.hours_to_full_crit, "disk.hours_to_full_warn",
              t.disk.hours_to_full_warn),
             ("docker.storm_warn", t.docker.storm_warn, "docker.storm_crit", t.docker.storm_crit),
             ("processes.growth_warn_mib", t.processes.growth_warn_mib, "processes.growth_crit_mib",
              t.processes.growth_crit_mib)]
    for a, av, b, bv in pairs:
        if av > bv:
            raise ThresholdsError(f"{path}: {a} ({av}) must not be above {b} ({bv})")
    if t.alerting.notify_level not in ("warn", "crit"):
        raise ThresholdsError(f"{path}: alerting.notify_level = {t.alerting.notify_level!r}: use warn or crit")


def explain(t: Thresholds) -> str:
    """The thresholds in force, as TOML a user can copy into their own file."""
    lines = [f"# thresholds in force, from: {', '.join(t.sources) or 'built-in defaults'}"]
    for f in fields(Thresholds):
        if f.name == "sources":
            continue
        lines.append(f"\n[{f.name}]")
        section = getattr(t, f.name)
        for sf in fields(section):
            lines.append(f"{sf.name} = {_toml(getattr(section, sf.name))}")
    return "\n".join(lines) + "\n"


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, tuple):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return repr(v)
