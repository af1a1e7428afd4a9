"""Host check families: memory, swap, disk, WSL, processes. Each is `family(ctx) -> list[Finding]`.

Stdlib only, no subprocess: a whole one-shot run must take ≤ 300 ms. Every file is read under ctx.root so tests
use a fake tree. A family leaves what the next run needs for rates in ctx.samples[<family>] and reads the
previous run's from ctx.prev[<family>].
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from services.health import procfs, wslconfig
from services.health.model import Band, CheckContext, Finding, Status

GIB = 1024**3
MIB = 1024**2
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
SAMPLE_PIDS = 50  # processes kept for the growth check: enough to catch a leak, small enough to save fast
SKIP_USERS = {"public", "default", "default user", "all users", "defaultuser0", "wdagutilityaccount"}
GONE = (FileNotFoundError, ProcessLookupError, PermissionError)  # a process that exited (or hid) mid-read


def statfs(path: Path) -> tuple[int, os.statvfs_result]:
    """(st_dev, statvfs) of `path`: the disk check's one call into the kernel, replaced in tests."""
    return os.stat(path).st_dev, os.statvfs(path)


# --- memory


def memory(ctx: CheckContext) -> list[Finding]:
    info = procfs.meminfo(procfs.read(ctx.path("/proc/meminfo")))
    return [_memory_used(ctx, info), _memory_pressure(ctx), _memory_oom(ctx)]


def _memory_used(ctx: CheckContext, info: dict[str, int]) -> Finding:
    t = ctx.thresholds.memory
    total = _mem_total(info)
    avail = info.get("MemAvailable", info.get("MemFree", 0) + info.get("Buffers", 0) + info.get("Cached", 0))
    used_pct = (total - avail) / total * 100
    status: Status = "crit" if 100 - used_pct < t.available_crit else "warn" if used_pct >= t.used_warn else "ok"
    return Finding(
        "memory.used", "", status, round(used_pct, 1), "%",
        f"memory {_pct(used_pct)}% used ({_gib(total - avail)} of {_gib(total)} GiB, {_gib(avail)} GiB available)",
        "" if status == "ok" else "see processes.top for the biggest consumers; stop what you do not need "
        "or cap WSL with memory= in .wslconfig",
        Band(t.used_warn, 100 - t.available_crit, True, t.clear_margin))


def _memory_pressure(ctx: CheckContext) -> Finding:
    t = ctx.thresholds.memory
    try:
        text = procfs.read_optional(ctx.path("/proc/pressure/memory"))
    except OSError:
        text = None  # present but switched off (psi=0 at boot): reading fails with EOPNOTSUPP
    if text is None:
        return Finding("memory.pressure", "", "info", None, "%", "memory pressure not available (kernel without PSI)",
                       "nothing to do: memory.used still applies")
    p = procfs.psi(text)
    some, full = p.get("some", {}).get("avg60", 0.0), p.get("full", {}).get("avg60", 0.0)
    status: Status = ("crit" if full >= t.pressure_full_avg60_crit
                      else "warn" if some >= t.pressure_some_avg60_warn else "ok")
    return Finding("memory.pressure", "", status, some, "%",
                   f"memory stalls over the last minute: some tasks {some:.1f}%, all tasks {full:.1f}% of the time",
                   "" if status == "ok" else "tasks are waiting for memory: free some (processes.top) or raise "
                   "the WSL cap")


def _memory_oom(ctx: CheckContext) -> Finding:
    """Warn while a kill is within oom_window_minutes: a one-run warn would never outlast alerting's pending time."""
    kills = procfs.vmstat(procfs.read(ctx.path("/proc/vmstat"))).get("oom_kill")
    if kills is None:
        return Finding("memory.oom", "", "info", None, "count", "OOM kill count not available (kernel before 4.13)",
                       "look for kills with `dmesg | grep -i oom`")
    window = ctx.thresholds.memory.oom_window_minutes
    boot = _boot_id(ctx)
    before = _prev(ctx, "memory")
    last = _num(before, "oom_kill")
    if last is None:
        new = 0  # first run: kills since boot are not news
    elif not _same_boot(before, boot) or kills < last:
        new = kills  # rebooted since: every kill counted now came after the previous run
    else:
        new = kills - int(last)
    recent = [*_within(before.get("recent_kills"), ctx.now, window * 60), *([[ctx.now, new]] if new else [])]
    last_kill_at = recent[-1][0] if recent else None
    ctx.samples["memory"] = {"oom_kill": kills, "boot_id": boot, "last_kill_at": last_kill_at,
                             "recent_kills": recent}
    in_window = int(sum(n for _, n in recent))
    band = Band(1, None)
    if last_kill_at is not None:
        if new:
            earlier = f", {in_window} in the last {window:g} min" if in_window > new else ""
            summary = f"the kernel killed {new} process(es) for lack of memory since the last run{earlier}"
        else:
            summary = (f"the kernel killed {in_window} process(es) for lack of memory in the last {window:g} min, "
                       f"the latest {_ago(ctx.now - last_kill_at)} ago")
        return Finding("memory.oom", "", "warn", in_window, "count", f"{summary} ({kills} since boot)",
                       "see what died with `dmesg | grep -i -A5 oom`; free memory or raise the WSL cap", band)
    if kills:
        since = f", none in the last {window:g} min" if last is not None else ""
        return Finding("memory.oom", "", "info", 0, "count", f"{kills} OOM kill(s) since boot{since}",
                       "see what was killed with `dmesg | grep -i oom`", band)
    return Finding("memory.oom", "", "ok", 0, "count", "no OOM kills since boot", "", band)


def _within(entries: Any, now: float, window: float) -> list[list[float]]:
    """The [time, count] entries of a samples list from the last `window` seconds; malformed entries are dropped."""
    if not isinstance(entries, list):
        return []
    out: list[list[float]] = []
    for e in entries:
        at, n = (_float(e[0]), _float(e[1])) if isinstance(e, list) and len(e) == 2 else (None, None)
        if at is not None and n is not None and 0 <= now - at < window:
            out.append([at, n])
    return out


# --- swap


def swap(ctx: CheckContext) -> list[Finding]:
    info = procfs.meminfo(procfs.read(ctx.path("/proc/meminfo")))
    counters = procfs.vmstat(procfs.read(ctx.path("/proc/vmstat")))
    return [_swap_used(ctx, info), _swap_in(ctx, counters)]


def _swap_used(ctx: CheckContext, info: dict[str, int]) -> Finding:
    t = ctx.thresholds.swap
    total = info.get("SwapTotal", 0)
    if not total:
        return Finding("swap.used", "", "info", None, "%", "no swap configured",
                       "fine while memory lasts; WSL: swap= in .wslconfig, Linux: a swap file")
    used = total - info.get("SwapFree", 0)
    pct = used / total * 100
    status = _level(pct, t.used_warn, t.used_crit)
    return Finding("swap.used", "", status, round(pct, 1), "%",
                   f"swap {_pct(pct)}% used ({_gib(used)} of {_gib(total)} GiB)",
                   "" if status == "ok" else "memory is short: free some (processes.top) or raise the WSL cap; "
                   "more swap only delays the OOM killer",
                   Band(t.used_warn, t.used_crit, True, t.clear_margin))


def _swap_in(ctx: CheckContext, counters: dict[str, int]) -> Finding:
    t = ctx.thresholds.swap
    pages = counters.get("pswpin")
    if pages is None:
        return Finding("swap.swapin", "", "info", None, "pages/s", "swap-in count not available in /proc/vmstat",
                       "nothing to do: swap.used still applies")
    boot = _boot_id(ctx)
    ctx.samples["swap"] = {"pswpin": pages, "t": ctx.now, "boot_id": boot}
    before = _prev(ctx, "swap")
    last, t0 = _num(before, "pswpin"), _num(before, "t")
    if last is None or t0 is None or not _same_boot(before, boot) or pages < last or ctx.now <= t0:
        return Finding("swap.swapin", "", "info", None, "pages/s", "swap-in rate needs two runs",
                       "run again: the rate compares with the previous run")
    rate = (pages - last) / (ctx.now - t0)
    status = _level(rate, t.swapin_warn, None)
    return Finding("swap.swapin", "", status, round(rate, 1), "pages/s",
                   f"swapping in {rate:.0f} pages/s since the last run ({_ago(ctx.now - t0)} ago)",
                   "" if status == "ok" else "the system keeps reading swap back (thrashing): free memory "
                   "(processes.top) or raise the WSL cap",
                   Band(t.swapin_warn, None))


# --- disk


def disk(ctx: CheckContext) -> list[Finding]:
    docker = ctx.samples.get("docker")
    data_root = docker.get("data_root") if isinstance(docker, dict) else None
    prev = _prev(ctx, "disk")
    out: list[Finding] = []
    samples: dict[str, Any] = {}
    seen: set[int] = set()
    for path in _disk_paths(ctx, data_root if isinstance(data_root, str) else None):
        try:
            dev, st = statfs(ctx.path(path))
        except OSError as exc:
            out.append(Finding("disk.used", path, "info", None, "%", f"{path}: cannot read its size ({exc})",
                               f"check the mount with `findmnt {path}`"))
            continue
        if dev in seen:
            continue  # same filesystem as a path already reported (/var/lib/docker on /)
        seen.add(dev)
        frsize = st.f_frsize or st.f_bsize
        total, free = st.f_blocks * frsize, st.f_bavail * frsize
        used = (st.f_blocks - st.f_bfree) * frsize
        out.append(_disk_used(ctx, path, used, free, total, data_root))
        fill, samples[path] = _disk_fill(ctx, path, used, free, total, prev.get(path))
        out.append(fill)
    ctx.samples["disk"] = samples
    return out


def _disk_paths(ctx: CheckContext, data_root: str | None) -> list[str]:
    """Configured paths present under root ("/" always), then Docker's data root; each once."""
    wanted = [*ctx.thresholds.disk.paths, *([data_root] if data_root else [])]
    out: list[str] = []
    for p in wanted:
        if p not in out and (p == "/" or ctx.path(p).exists()):
            out.append(p)
    return out


def _disk_used(ctx: CheckContext, path: str, used: int, free: int, total: int, data_root: Any) -> Finding:
    t = ctx.thresholds.disk
    pct = used / (used + free) * 100 if used + free else 0.0  # as df: reserved blocks are not free to users
    status: Status = ("crit" if pct >= t.used_crit and free < t.free_crit_gib * GIB
                      else "warn" if pct >= t.used_warn else "ok")
    return Finding("disk.used", path, status, round(pct, 1), "%",
                   f"{path} {_pct(pct)}% used ({_size(free)} free of {_size(total)})",
                   "" if status == "ok" else _disk_hint(path, data_root),
                   Band(t.used_warn, t.used_crit, True, t.clear_margin))


def _disk_hint(path: str, data_root: Any) -> str:
    if path == data_root or path.endswith("/docker"):
        return "see `docker system df`; `docker system prune` removes stopped containers, dangling images, build cache"
    if path.startswith("/mnt/"):
        return "free space on the Windows drive (Storage Sense, Disk Cleanup); WSL's virtual disk lives there too"
    return f"find what grew: `sudo du -xh --max-depth=2 {path} | sort -h | tail`; clearing ~/.cache often helps"


def _disk_fill(ctx: CheckContext, path: str, used: int, free: int, total: int,
               before: Any) -> tuple[Finding, dict[str, Any]]:
    """The disk.fill finding and the sample to keep as the base for the next run's rate."""
    t = ctx.thresholds.disk
    sample = {"used": used, "total": total, "t": ctx.now}
    b = before if isinstance(before, dict) else {}
    b_used, b_t = _num(b, "used"), _num(b, "t")
    if b_used is None or b_t is None or b.get("total") != total or ctx.now < b_t:
        return Finding("disk.fill", path, "info", None, "h", f"{path} fill rate needs two runs",
                       "run again: the rate compares with the previous run"), sample
    dt = ctx.now - b_t
    if dt < t.min_fill_interval_seconds:
        # keep the older base, so runs closer together than the minimum still measure over a long enough span
        return Finding("disk.fill", path, "info", None, "h",
                       f"{path} fill rate: measuring ({dt:.0f} s of the {t.min_fill_interval_seconds:.0f} s needed)",
                       "run again later"), b
    rate = (used - b_used) / dt
    band = Band(t.hours_to_full_warn, t.hours_to_full_crit, False, t.fill_clear_margin_hours)  # hours, not points
    if rate <= 0:
        return Finding("disk.fill", path, "ok", None, "h", f"{path} not filling", "", band), sample
    hours = free / rate / 3600
    status = _level(hours, t.hours_to_full_warn, t.hours_to_full_crit, higher_is_worse=False)
    return Finding("disk.fill", path, status, round(hours, 1), "h",
                   f"{path} full in {_hours(hours)} at {_size(rate * 3600)}/h",
                   "" if status == "ok" else f"something is writing fast: find it (`sudo du -xh --max-depth=2 "
                   f"{path} | sort -h | tail`, `docker system df`) and free space before it fills", band), sample


# --- WSL


def wsl(ctx: CheckContext) -> list[Finding]:
    if not _is_wsl(procfs.read_optional(ctx.path("/proc/version")) or ""):
        return [Finding("wsl.detected", "", "info", None, "", "not applicable (not a WSL host)",
                        "nothing to do: the WSL checks run only inside WSL")]
    users = _users_dir(ctx)
    if not users.is_dir():
        return [Finding("wsl.config", "", "info", None, "", f"cannot check .wslconfig: {users} not found",
                        "mount the Windows drive, or check [automount] root in /etc/wsl.conf")]
    files = _wslconfigs(users)
    total = _mem_total(procfs.meminfo(procfs.read(ctx.path("/proc/meminfo"))))
    if not files:
        return [Finding("wsl.config", "", "info", None, "", f"no Windows user folders under {users}",
                        "nothing to check: .wslconfig lives in C:\\Users\\<you>")]
    found = {user: raw for user, raw in files.items() if raw is not None}
    if not found:  # nobody has one: report each user, so the subject stays the same once the file exists
        return [Finding("wsl.config", user, "warn", None, "", f"{_where(user)} missing: no memory cap for WSL",
                        _cap_hint(total)) for user in sorted(files)]
    out: list[Finding] = []
    for user, raw in sorted(found.items()):
        cfg = wslconfig.parse(raw)
        out.append(_config_finding(user, cfg, total))
        cap = None if cfg.utf16 else wslconfig.memory_cap(cfg)
        if cap is not None:
            out.append(_cap_finding(ctx, user, cap, total))
    return out


def _is_wsl(version: str) -> bool:
    v = version.lower()
    return "microsoft" in v or "wsl" in v


def _users_dir(ctx: CheckContext) -> Path:
    """C:\\Users as this distribution mounts it: under /mnt unless /etc/wsl.conf moves the automount root."""
    try:
        raw = ctx.path("/etc/wsl.conf").read_bytes()
    except OSError:
        raw = b""
    root = (wslconfig.parse(raw).get("automount", "root") or "/mnt/").strip("\"'")
    return ctx.path(root.rstrip("/") + "/c/Users")


def _wslconfigs(users: Path) -> dict[str, bytes | None]:
    """{Windows user: .wslconfig bytes, or None when that user has none}; system folders are skipped."""
    out: dict[str, bytes | None] = {}
    with os.scandir(users) as entries:
        for entry in entries:
            if entry.name.lower() in SKIP_USERS or not entry.is_dir(follow_symlinks=False):
                continue
            try:
                out[entry.name] = (Path(entry.path) / ".wslconfig").read_bytes()
            except FileNotFoundError:
                out[entry.name] = None
            except OSError:
                continue  # another user's folder Windows will not let us read: not ours
    return out


def _config_finding(user: str, cfg: wslconfig.WslConfig, total: int) -> Finding:
    where = _where(user)
    if cfg.utf16:
        return Finding("wsl.config", user, "crit", None, "", f"{where} is saved as UTF-16: WSL ignores it",
                       "WSL silently ignores UTF-16 files; re-save as UTF-8 (Notepad: Save as, Encoding UTF-8), "
                       "then run `wsl --shutdown` from Windows")
    issues = wslconfig.problems(cfg)
    if issues:
        hint = (_cap_hint(total) if wslconfig.memory_cap(cfg) is None
                else "fix the key named, then run `wsl --shutdown` from Windows so WSL reads the file again")
        return Finding("wsl.config", user, "warn", None, "", f"{where}: {'; '.join(issues)}", hint)
    keys = ", ".join(f"{k}={v}" for k in ("memory", "processors", "swap") if (v := cfg.get("wsl2", k)) is not None)
    return Finding("wsl.config", user, "ok", None, "", f"{where}: {keys}")


def _cap_finding(ctx: CheckContext, user: str, cap: int, total: int) -> Finding:
    tolerance = ctx.thresholds.wsl.cap_tolerance_pct
    value = round(total / GIB, 1)
    if total > cap * (1 + tolerance / 100):
        return Finding("wsl.memory_cap", user, "warn", value, "GiB",
                       f"cap not applied: WSL sees {_gib(total)} GiB, {_where(user)} says {_gib(cap)} GiB",
                       "run `wsl --shutdown` from Windows, then reopen WSL: the cap is read when the VM starts")
    return Finding("wsl.memory_cap", user, "ok", value, "GiB",
                   f"memory cap {_gib(cap)} GiB applied (WSL sees {_gib(total)} GiB)")


def _where(user: str) -> str:
    return f"C:\\Users\\{user}\\.wslconfig"


def _cap_hint(total: int) -> str:
    # WSL's default VM gets half the Windows RAM, so what it sees now is the low end of the 50–75% range
    suggest = max(1, round(total / GIB))
    return (f"save a UTF-8 .wslconfig with a [wsl2] section and memory={suggest}GB (50–75% of the Windows RAM; "
            f"WSL sees {_gib(total)} GiB now), then run `wsl --shutdown` from Windows")


# --- processes


class Proc(NamedTuple):
    pid: int
    start: int  # clock ticks since boot: tells a reused pid from the process that had it before
    comm: str
    rss_kib: int


def processes(ctx: CheckContext) -> list[Finding]:
    procs = _scan(ctx.path("/proc"))
    boot = _boot_id(ctx)
    spikes: dict[str, Any] = {}
    findings = [_top(procs, ctx.thresholds.processes.top), *_growth(ctx, procs, boot, spikes)]
    ctx.samples["processes"] = {"t": ctx.now, "boot_id": boot, "growth": spikes,
                                "pids": {f"{p.pid}:{p.start}": [p.rss_kib, p.comm] for p in procs}}
    return findings


def _scan(proc: Path) -> list[Proc]:
    """The SAMPLE_PIDS largest processes by RSS, largest first; processes that exit meanwhile are skipped."""
    out: list[Proc] = []
    with os.scandir(proc) as entries:
        for entry in entries:
            if not entry.name.isdigit():
                continue
            try:
                comm, start, rss_pages = procfs.pid_stat(procfs.read(proc / entry.name / "stat"))
            except (*GONE, ValueError, IndexError):  # ValueError/IndexError: stat read empty as the process exited
                continue
            if rss_pages:  # 0: a kernel thread or a zombie
                out.append(Proc(int(entry.name), start, comm, rss_pages * PAGE_KIB))
    out.sort(key=lambda p: p.rss_kib, reverse=True)
    return out[:SAMPLE_PIDS]


def _top(procs: list[Proc], n: int) -> Finding:
    top = procs[:n]
    if not top:
        return Finding("processes.top", "", "info", None, "MiB", "no process memory readable under /proc",
                       "check that /proc is mounted and readable")
    listing = ", ".join(f"{p.comm} {_size(p.rss_kib * 1024)} (pid {p.pid})" for p in top)
    return Finding("processes.top", "", "ok", round(sum(p.rss_kib for p in top) / 1024, 1), "MiB",
                   f"top {len(top)} by memory: {listing}")


def _growth(ctx: CheckContext, procs: list[Proc], boot: str | None, spikes: dict[str, Any]) -> list[Finding]:
    """Growth since the previous run per pid, held for growth_window_minutes after its last big step.

    A leak shows as one step between two runs; held, it outlasts alerting's pending time instead of being a blip.
    `spikes` receives {pid:start: {at, mib, seconds}} (the last over-threshold growth) for the next run.
    """
    t = ctx.thresholds.processes
    before = _prev(ctx, "processes")
    pids, t0 = before.get("pids"), _num(before, "t")
    if not isinstance(pids, dict) or t0 is None or not _same_boot(before, boot):
        return [Finding("processes.growth", "", "info", None, "MiB", "process growth needs two runs",
                        "run again: growth compares with the previous run")]
    held = before.get("growth")
    held = held if isinstance(held, dict) else {}
    out: list[Finding] = []
    for p in procs:
        key = f"{p.pid}:{p.start}"  # start time too: a reused pid is another process
        spike = _spike(held.get(key), ctx.now, t.growth_window_minutes * 60)
        old = pids.get(key)
        old_kib = _float(old[0]) if isinstance(old, list) and old else None
        if old_kib is not None:
            grew = (p.rss_kib - old_kib) / 1024
            if _level(grew, t.growth_warn_mib, t.growth_crit_mib) != "ok":
                spike = {"at": ctx.now, "mib": round(grew, 1), "seconds": ctx.now - t0}
        if spike is None or _level(spike["mib"], t.growth_warn_mib, t.growth_crit_mib) == "ok":
            continue  # ok: held from before the thresholds were raised
        spikes[key] = spike
        out.append(_growth_finding(ctx, p, spike))
    if not out:
        out.append(Finding("processes.growth", "", "ok", None, "MiB",
                           f"no process grew by {t.growth_warn_mib:.0f} MiB or more between two runs "
                           f"in the last {t.growth_window_minutes:g} min"))
    return out


def _spike(entry: Any, now: float, window: float) -> dict[str, float] | None:
    """A pid's last over-threshold growth from the samples, if it is recent enough to hold the alert."""
    if not isinstance(entry, dict):
        return None
    at, mib, seconds = _num(entry, "at"), _num(entry, "mib"), _num(entry, "seconds")
    if at is None or mib is None or seconds is None or not 0 <= now - at < window:
        return None
    return {"at": at, "mib": mib, "seconds": seconds}


def _growth_finding(ctx: CheckContext, p: Proc, spike: dict[str, float]) -> Finding:
    t = ctx.thresholds.processes
    subject = f"pid {p.pid} ({p.comm})"
    when = "" if spike["at"] == ctx.now else f", {_ago(ctx.now - spike['at'])} ago"
    return Finding("processes.growth", subject, _level(spike["mib"], t.growth_warn_mib, t.growth_crit_mib),
                   spike["mib"], "MiB",
                   f"{subject} grew {_size(spike['mib'] * MIB)} in {_ago(spike['seconds'])}{when} "
                   f"(now {_size(p.rss_kib * 1024)})",
                   f"a leak or a growing cache: watch it with `ps -o pid,rss,etime,cmd -p {p.pid}`; "
                   "restart it or cap it (container mem_limit, node --max-old-space-size)",
                   Band(t.growth_warn_mib, t.growth_crit_mib))


# --- shared helpers


def _mem_total(info: dict[str, int]) -> int:
    total = info.get("MemTotal", 0)
    if not total:
        raise ValueError("/proc/meminfo has no MemTotal; is /proc mounted?")
    return total


def _level(value: float, warn: float | None, crit: float | None, higher_is_worse: bool = True) -> Status:
    def past(limit: float | None) -> bool:
        return limit is not None and (value >= limit if higher_is_worse else value <= limit)

    return "crit" if past(crit) else "warn" if past(warn) else "ok"


def _prev(ctx: CheckContext, family: str) -> dict[str, Any]:
    before = ctx.prev.get(family)
    return before if isinstance(before, dict) else {}  # a hand-edited or foreign samples file is a first run


def _num(d: Mapping[str, Any], key: str) -> float | None:
    return _float(d.get(key))


def _float(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _boot_id(ctx: CheckContext) -> str | None:
    text = procfs.read_optional(ctx.path("/proc/sys/kernel/random/boot_id"))
    return text.strip() if text else None


def _same_boot(before: Mapping[str, Any], boot: str | None) -> bool:
    """Kernel counters restart at boot: a sample from another boot is no base for a delta."""
    return before.get("boot_id") == boot


def _pct(x: float) -> str:
    return str(int(x))  # truncated, so a value shown below a threshold is below it


def _gib(n: float) -> str:
    x = n / GIB
    return f"{x:.1f}" if x < 100 else f"{x:.0f}"


def _size(n: float) -> str:
    return f"{_gib(n)} GiB" if n >= GIB else f"{n / MIB:.0f} MiB"


def _hours(h: float) -> str:
    return f"{h:.1f} h" if h < 48 else f"{h / 24:.1f} days"


def _ago(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"
