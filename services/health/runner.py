"""Run the check families into one Report, and keep the samples that rates need between runs. Stdlib only."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from services.health import docker_checks, host_checks, paths
from services.health import thresholds as thresholds_mod
from services.health.model import CheckContext, Finding, Report
from services.health.thresholds import Thresholds
from services.sentinel.atomic import write_json

Family = Callable[[CheckContext], list[Finding]]


def docker(ctx: CheckContext) -> list[Finding]:
    """Docker's checks, looked up at call time (tests replace docker_checks.check); the SDK loads only there."""
    return docker_checks.check(ctx)


# docker first: it leaves the daemon's data root in ctx.samples for the disk check
FAMILIES: list[tuple[str, Family]] = [
    ("docker", docker),
    ("memory", host_checks.memory),
    ("swap", host_checks.swap),
    ("disk", host_checks.disk),
    ("wsl", host_checks.wsl),
    ("processes", host_checks.processes),
]


def select(names: Iterable[str]) -> list[tuple[str, Family]]:
    """The families named, in run order; an unknown name is an error listing the known ones."""
    wanted = set(names)
    known = {name for name, _ in FAMILIES}
    if unknown := wanted - known:
        raise ValueError(f"unknown check family {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
    return [(name, fn) for name, fn in FAMILIES if name in wanted]


def run_checks(ctx: CheckContext, *, families: Sequence[tuple[str, Family]] | None = None) -> Report:
    """Every family in order; one that raises becomes one "<family>.error" finding and the others still run."""
    start = time.perf_counter()
    findings: list[Finding] = []
    for name, fn in FAMILIES if families is None else families:
        try:
            findings.extend(fn(ctx))
        except Exception as exc:
            findings.append(Finding(f"{name}.error", "", "info", None, "",
                                    f"check failed: {type(exc).__name__}: {exc}", "report this bug"))
    return Report(findings, took_ms=(time.perf_counter() - start) * 1000)


def load_samples(path: Path) -> dict[str, Any]:
    """The previous run's samples; a missing or unreadable file is a first run."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):  # ValueError covers bad JSON and bad UTF-8
        return {}
    return data if isinstance(data, dict) else {}


def save_samples(path: Path, samples: dict[str, Any]) -> None:
    """Write atomically (temp file + rename, no fsync: losing the last samples in a crash only costs one rate)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(str(path), samples)


def _fresher(own: Path, other: Path) -> Path:
    """The more recently written of two samples files (`own` on a tie or when `other` is missing)."""
    try:
        return other if other.stat().st_mtime_ns > own.stat().st_mtime_ns else own
    except FileNotFoundError:
        return own if own.exists() else other
    except OSError:
        return own


def one_shot(*, root: Path = Path("/"), thresholds: Thresholds | None = None, data_dir: Path | None = None,
             now: float | None = None, docker_host: str | None = None, save: bool = True,
             families: Sequence[tuple[str, Family]] | None = None) -> Report:
    """Load thresholds and the freshest samples, run the checks, save this run's samples, hand back the report.

    One-shots read the watch's samples when they are newer (rates over the last tick, not since a manual run days
    ago) but save only to their own file: the watch's is written only by the watch, under its lock.
    """
    samples_path = paths.samples_file(data_dir, watch=False)
    prev = load_samples(_fresher(samples_path, paths.samples_file(data_dir, watch=True)))
    ctx = CheckContext(root=root, thresholds=thresholds or thresholds_mod.load(),
                       now=time.time() if now is None else now, prev=prev,
                       docker_host=docker_host if docker_host is not None else os.environ.get("DOCKER_HOST"))
    report = run_checks(ctx, families=families)
    if not save:
        return report
    try:
        # families that did not run (or failed) keep their previous samples, so their rates survive
        save_samples(samples_path, {**prev, **ctx.samples})
    except OSError as exc:
        return Report([*report.findings, Finding(
            "health.samples", "", "info", None, "", f"cannot save samples to {samples_path}: {exc}",
            "set WSL_AUDIT_HOME to a writable folder; rates and growth need the previous run's samples")],
            report.took_ms)
    return report
