"""Reading a Windows .wslconfig (or /etc/wsl.conf) as WSL does: UTF-8 INI, sizes like 8GB. Stdlib only."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}  # WSL's KB/MB/GB/TB are binary
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)b?", re.IGNORECASE)
MIN_MEMORY = 256 * 1024**2  # a smaller cap is a missing unit ("memory=8" is 8 bytes), not a choice


@dataclass(frozen=True)
class WslConfig:
    utf16: bool = False  # WSL silently ignores such a file
    sections: dict[str, dict[str, str]] = field(default_factory=dict)  # lower-case section → lower-case key → value

    def get(self, section: str, key: str) -> str | None:
        return self.sections.get(section, {}).get(key)


def looks_utf16(raw: bytes) -> bool:
    """A UTF-16 BOM, or NUL bytes (UTF-16 without a BOM; no UTF-8 text config holds NULs)."""
    return raw[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in raw


def parse(raw: bytes) -> WslConfig:
    """Sections and keys, lower-cased; CRLF, a UTF-8 BOM, `#`/`;` comments and blank lines are fine."""
    if looks_utf16(raw):
        return WslConfig(utf16=True)
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in raw.decode("utf-8-sig", errors="replace").splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1].strip().lower(), {})
        elif "=" in line and current is not None:
            key, _, value = line.partition("=")
            current[key.strip().lower()] = value.split("#", 1)[0].strip()
    return WslConfig(sections=sections)


def parse_size(value: str) -> int | None:
    """Bytes in "8GB", "8g", "8192MB", "0.5TB", "512" (bytes); None when it is not a size."""
    m = _SIZE.fullmatch(value.strip())
    if m is None:
        return None
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def problems(cfg: WslConfig) -> list[str]:
    """What is wrong in [wsl2], one short phrase each, naming the key (WSL ignores a key it cannot read)."""
    if "wsl2" not in cfg.sections:
        return ["no [wsl2] section"]
    out: list[str] = []
    memory = cfg.get("wsl2", "memory")
    if memory is None:
        out.append("no memory= in [wsl2]")
    elif (size := parse_size(memory)) is None or size == 0:
        out.append(f"memory={memory} is not a size like 8GB")
    elif size < MIN_MEMORY:
        out.append(f"memory={memory} is only {size} bytes; add a unit like 8GB")
    swap = cfg.get("wsl2", "swap")
    if swap is not None and parse_size(swap) is None:
        out.append(f"swap={swap} is not a size like 4GB (0 turns swap off)")
    processors = cfg.get("wsl2", "processors")
    if processors is not None and not (processors.isdigit() and int(processors) > 0):
        out.append(f"processors={processors} is not a whole number of CPUs like 4")
    return out


def memory_cap(cfg: WslConfig) -> int | None:
    """The [wsl2] memory cap in bytes when it is set and readable."""
    value = cfg.get("wsl2", "memory")
    size = parse_size(value) if value is not None else None
    return size if size is not None and size >= MIN_MEMORY else None
