"""The daily digest: one message assembled from sections that services register.

A section is a function `(runtime, since) -> Section | None`; returning None leaves it out (nothing to
say). Sections return plain text: rendering (escaping, bold titles) is the caller's job, so the bot and
the CLI can both show a digest.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Section:
    title: str
    lines: list[str] = field(default_factory=list)


SectionFn = Callable[["Runtime", datetime], Section | None]


@dataclass(frozen=True)
class _Registered:
    name: str
    order: int
    fn: SectionFn


_REGISTRY: dict[str, _Registered] = {}

# Modules that register sections on import. A new service adds its module here, once.
PROVIDERS: tuple[str, ...] = ("services.activity", "services.sentinel.report", "services.lore.report",
                              "services.gateway.report", "services.health.report")


def register(name: str, *, order: int = 100) -> Callable[[SectionFn], SectionFn]:
    """Decorator: add `fn` as the digest section `name` (lower order comes first)."""

    def deco(fn: SectionFn) -> SectionFn:
        _REGISTRY[name] = _Registered(name, order, fn)
        return fn

    return deco


def sections() -> list[str]:
    _load_providers()
    return [r.name for r in sorted(_REGISTRY.values(), key=lambda r: r.order)]


def _load_providers() -> None:
    for mod in PROVIDERS:
        importlib.import_module(mod)


@dataclass(frozen=True)
class Digest:
    since: datetime
    until: datetime
    sections: list[Section]


def build_digest(rt: Runtime, *, now: datetime | None = None, hours: int = 24) -> Digest:
    """Run every registered section over the last `hours`; a failing section is reported, not fatal."""
    _load_providers()
    until = now or datetime.now(UTC)
    since = until - timedelta(hours=hours)
    out: list[Section] = []
    for reg in sorted(_REGISTRY.values(), key=lambda r: r.order):
        try:
            section = reg.fn(rt, since)
        except Exception as exc:  # one broken section must not cost the user the whole digest
            log.exception("digest section %s failed", reg.name)
            section = Section(reg.name, [f"(section failed: {exc.__class__.__name__}; see the bot log)"])
        if section is not None:
            out.append(section)
    return Digest(since=since, until=until, sections=out)
