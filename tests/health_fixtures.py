"""A fake host for the health checks: /proc files, a WSL or plain kernel, Windows user folders, and disks.

Everything is written under a tmp root the checks read through ctx.path(); disks go through FakeDisks, which
stands in for host_checks.statfs (the one kernel call a fake tree cannot fake).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.health.model import CheckContext
from services.health.thresholds import Thresholds

GIB = 1024**3
MIB = 1024**2
KIB_PER_GIB = 1024**2
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class FakeHost:
    root: Path

    def write(self, path: str, data: str | bytes) -> Path:
        target = self.root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            target.write_bytes(data)
        else:
            target.write_text(data)
        return target

    def meminfo(self, total_gib: float = 16, available_gib: float = 8, swap_total_gib: float = 0,
                swap_free_gib: float = 0) -> FakeHost:
        kib = {"MemTotal": total_gib, "MemFree": available_gib / 2, "MemAvailable": available_gib,
               "Buffers": 0.1, "Cached": available_gib / 2, "SwapTotal": swap_total_gib, "SwapFree": swap_free_gib}
        lines = [f"{k + ':':<16}{int(v * KIB_PER_GIB):>12} kB" for k, v in kib.items()]
        self.write("/proc/meminfo", "\n".join([*lines, "HugePages_Total:       0", ""]))
        return self

    def vmstat(self, oom_kill: int | None = 0, pswpin: int | None = 0) -> FakeHost:
        lines = ["nr_free_pages 123456", f"pswpin {pswpin}" if pswpin is not None else "", "pswpout 0",
                 f"oom_kill {oom_kill}" if oom_kill is not None else ""]
        self.write("/proc/vmstat", "\n".join(line for line in lines if line) + "\n")
        return self

    def pressure(self, some_avg60: float = 0.0, full_avg60: float = 0.0) -> FakeHost:
        self.write("/proc/pressure/memory",
                   f"some avg10=0.00 avg60={some_avg60:.2f} avg300=0.00 total=12345\n"
                   f"full avg10=0.00 avg60={full_avg60:.2f} avg300=0.00 total=678\n")
        return self

    def no_pressure(self) -> FakeHost:
        (self.root / "proc/pressure/memory").unlink(missing_ok=True)
        return self

    def version(self, wsl: bool) -> FakeHost:
        kernel = ("5.15.167.4-microsoft-standard-WSL2 (root@f9c826d3017f) (gcc (GCC) 11.2.0) #1 SMP"
                  if wsl else "6.8.0-45-generic (buildd@lcy02-amd64-075) (gcc 13.2.0) #45-Ubuntu SMP")
        self.write("/proc/version", f"Linux version {kernel}\n")
        return self

    def boot(self, boot_id: str) -> FakeHost:
        self.write("/proc/sys/kernel/random/boot_id", boot_id + "\n")
        return self

    def process(self, pid: int, comm: str, rss_mib: float | None, start: int = 1000) -> FakeHost:
        """A process; rss_mib None is a kernel thread (RSS 0, no VmRSS line). The checks read only stat;
        status and comm are there as on a real host."""
        rss = "" if rss_mib is None else f"VmRSS:\t{int(rss_mib * 1024):>8} kB\n"
        self.write(f"/proc/{pid}/status", f"Name:\t{comm}\nState:\tS (sleeping)\nPid:\t{pid}\n{rss}Threads:\t1\n")
        self.write(f"/proc/{pid}/comm", comm + "\n")
        pages = int((rss_mib or 0) * MIB / PAGE_SIZE)
        # fields 3-21, then 22 (start time), 23 (vsize), 24 (RSS in pages), and the rest
        fields = ["S", "1", str(pid), str(pid), "0", "-1", "4194304", *["0"] * 12, str(start), str(pages * PAGE_SIZE),
                  str(pages), "18446744073709551615", *["0"] * 5]
        self.write(f"/proc/{pid}/stat", f"{pid} ({comm}) {' '.join(fields)}\n")
        return self

    def kill(self, pid: int) -> FakeHost:
        shutil.rmtree(self.root / "proc" / str(pid))
        return self

    def windows_user(self, name: str, wslconfig: bytes | None = None) -> FakeHost:
        folder = self.root / "mnt/c/Users" / name
        folder.mkdir(parents=True, exist_ok=True)
        if wslconfig is not None:
            (folder / ".wslconfig").write_bytes(wslconfig)
        return self

    def context(self, *, now: float = 1_000_000.0, prev: dict[str, Any] | None = None,
                thresholds: Thresholds | None = None, samples: dict[str, Any] | None = None) -> CheckContext:
        return CheckContext(root=self.root, thresholds=thresholds or Thresholds(), now=now, prev=prev or {},
                            samples=samples if samples is not None else {})


def fake_host(tmp_path: Path) -> FakeHost:
    """A plain (non-WSL) Linux host: 16 GiB, half available, no swap, no OOM kills, PSI quiet, one boot."""
    host = FakeHost(tmp_path / "root")
    host.root.mkdir()
    return host.meminfo().vmstat().pressure().version(wsl=False).boot("boot-1")


@dataclass
class FakeDisks:
    """Replaces host_checks.statfs: host path → (st_dev, statvfs); paths not set raise as a missing mount would."""

    root: Path
    disks: dict[str, tuple[int, os.statvfs_result]] = field(default_factory=dict)

    def set(self, path: str, *, dev: int, total_gib: float, free_gib: float, block: int = 4096) -> FakeDisks:
        blocks, free = int(total_gib * GIB / block), int(free_gib * GIB / block)
        self.disks[path] = (dev, os.statvfs_result((block, block, blocks, free, free, 1000, 500, 500, 0, 255)))
        (self.root / path.lstrip("/")).mkdir(parents=True, exist_ok=True)
        return self

    def __call__(self, path: Path) -> tuple[int, os.statvfs_result]:
        rel = path.relative_to(self.root).as_posix()
        host_path = "/" if rel == "." else "/" + rel
        if host_path not in self.disks:
            raise FileNotFoundError(2, "No such file or directory", str(path))
        return self.disks[host_path]
