"""What a check says: a Finding per (check, subject), and what a run of all checks hands back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from services.health.thresholds import Thresholds

Status = Literal["ok", "info", "warn", "crit"]
RANK: dict[str, int] = {"ok": 0, "info": 1, "warn": 2, "crit": 3}
EXIT_CODE: dict[str, int] = {"ok": 0, "info": 0, "warn": 1, "crit": 2}


@dataclass(frozen=True, slots=True)
class Band:
    """The numeric thresholds a value was judged by, kept so alerting can apply hysteresis.

    A firing alert at level L clears only once the value is `clear_margin` past L's threshold on the good side
    (below it when `higher_is_worse`), so a value bouncing around a threshold does not flap.
    """

    warn: float | None
    crit: float | None
    higher_is_worse: bool = True
    clear_margin: float = 0.0


@dataclass(frozen=True, slots=True)
class Finding:
    check: str  # stable id, e.g. "memory.used", "docker.restarts"; what --check and alert state key on
    subject: str  # what it is about: "" host-wide, a mount point, a container name, "pid 123 (node)"
    status: Status
    value: float | None
    unit: str  # "%", "GiB", "count", "h", "pages/s", "MiB", "" …
    summary: str  # one line for people: "memory 83% used (13.2 of 16.0 GiB)"
    hint: str = ""  # what to do about it; empty when ok
    band: Band | None = None

    @property
    def key(self) -> str:
        return f"{self.check}|{self.subject}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.band is None:
            del d["band"]
        return d


@dataclass
class CheckContext:
    """Everything a check reads. `root` is "/" on a real host and a fake tree in tests."""

    root: Path
    thresholds: Thresholds
    now: float  # epoch seconds (a controllable clock in tests)
    prev: Mapping[str, Any] = field(default_factory=dict)  # samples the previous run left (empty on the first)
    samples: dict[str, Any] = field(default_factory=dict)  # samples this run leaves for the next (rates, deltas)
    docker_host: str | None = None  # DOCKER_HOST; None means the default unix socket under root

    def path(self, p: str) -> Path:
        """Host path `p` under this context's root: ctx.path("/proc/meminfo")."""
        return self.root / p.lstrip("/")


@dataclass(frozen=True)
class Report:
    findings: list[Finding]
    took_ms: float

    @property
    def worst(self) -> Status:
        worst: Status = "ok"
        for f in self.findings:
            if RANK[f.status] > RANK[worst]:
                worst = f.status
        return worst

    @property
    def exit_code(self) -> int:
        return EXIT_CODE[self.worst]

    def sorted(self) -> list[Finding]:
        """Worst first, then by check id and subject (stable, for people and tests)."""
        return sorted(self.findings, key=lambda f: (-RANK[f.status], f.check, f.subject))
