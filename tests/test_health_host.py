"""Host health checks against a fake /proc and Windows tree: thresholds, rates between runs, .wslconfig, runner."""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import fields, replace
from pathlib import Path

import pytest

from services.health import docker_checks, host_checks, paths, procfs, runner, thresholds, wslconfig
from services.health.model import Band, CheckContext, Finding, Report
from services.health.thresholds import Disk, Memory, Processes, Thresholds
from tests.health_fixtures import FakeDisks, FakeHost, fake_host

HOST_FAMILIES = runner.select(["memory", "swap", "disk", "wsl", "processes"])


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    return fake_host(tmp_path)


@pytest.fixture
def disks(host: FakeHost, monkeypatch: pytest.MonkeyPatch) -> FakeDisks:
    fake = FakeDisks(host.root)
    monkeypatch.setattr(host_checks, "statfs", fake)
    return fake


def one(findings: list[Finding], check: str, subject: str = "") -> Finding:
    matches = [f for f in findings if f.check == check and f.subject == subject]
    assert len(matches) == 1, f"{check}|{subject}: {findings}"
    return matches[0]


# --- memory


@pytest.mark.parametrize(("available_gib", "status"), [(3.36, "ok"), (3.04, "warn"), (0.64, "crit")])
def test_memory_used_thresholds(host: FakeHost, available_gib: float, status: str) -> None:
    host.meminfo(total_gib=16, available_gib=available_gib)  # 79% used, 81% used, 4% available
    f = one(host_checks.memory(host.context()), "memory.used")
    assert f.status == status
    assert f.unit == "%" and f.band == Band(80.0, 95.0, True, 5.0)
    assert f.summary.startswith(f"memory {int(f.value or 0)}% used (")
    assert bool(f.hint) == (status != "ok")


def test_memory_pressure_absent_is_info_not_an_error(host: FakeHost) -> None:
    host.no_pressure()
    f = one(host_checks.memory(host.context()), "memory.pressure")
    assert f.status == "info" and "not available (kernel without PSI)" in f.summary


@pytest.mark.parametrize(("some", "full", "status"), [(9.9, 0.0, "ok"), (10.0, 1.0, "warn"), (30.0, 5.0, "crit")])
def test_memory_pressure_thresholds(host: FakeHost, some: float, full: float, status: str) -> None:
    host.pressure(some_avg60=some, full_avg60=full)
    f = one(host_checks.memory(host.context()), "memory.pressure")
    assert (f.status, f.value) == (status, some)


def test_oom_kills_since_boot_are_info_and_new_ones_warn_for_the_window(host: FakeHost) -> None:
    host.vmstat(oom_kill=2)
    first = host.context(now=0.0)
    assert one(host_checks.memory(first), "memory.oom").status == "info"
    assert first.samples["memory"]["oom_kill"] == 2 and first.samples["memory"]["last_kill_at"] is None

    host.vmstat(oom_kill=5)
    second = host.context(now=30.0, prev=first.samples)
    f = one(host_checks.memory(second), "memory.oom")
    assert (f.status, f.value) == ("warn", 3) and f.hint
    assert f.summary == "the kernel killed 3 process(es) for lack of memory since the last run (5 since boot)"
    assert second.samples["memory"]["last_kill_at"] == 30.0

    # no new kill, but within oom_window_minutes (15) of the last one: still warn, so the watch's pending time passes
    third = host.context(now=630.0, prev=second.samples)
    f = one(host_checks.memory(third), "memory.oom")
    assert (f.status, f.value) == ("warn", 3)
    assert f.summary == ("the kernel killed 3 process(es) for lack of memory in the last 15 min, the latest 10 min ago "
                         "(5 since boot)")

    host.vmstat(oom_kill=6)
    fourth = host.context(now=730.0, prev=third.samples)
    f = one(host_checks.memory(fourth), "memory.oom")
    assert (f.status, f.value) == ("warn", 4) and "killed 1 process(es) for lack of memory since the last run, " \
        "4 in the last 15 min (6 since boot)" in f.summary

    fifth = host.context(now=930.0, prev=fourth.samples)  # the first kills left the window, the last did not
    assert (one(host_checks.memory(fifth), "memory.oom").value, fifth.samples["memory"]["last_kill_at"]) == (1, 730.0)

    sixth = host.context(now=730.0 + 900, prev=fifth.samples)
    f = one(host_checks.memory(sixth), "memory.oom")
    assert (f.status, f.value, f.summary) == ("info", 0, "6 OOM kill(s) since boot, none in the last 15 min")


def test_oom_window_zero_warns_only_on_the_run_that_saw_the_kill(host: FakeHost) -> None:
    t = replace(Thresholds(), memory=Memory(oom_window_minutes=0))
    first = host.context(now=0.0, thresholds=t)
    host_checks.memory(first)
    host.vmstat(oom_kill=1)
    second = host.context(now=30.0, prev=first.samples, thresholds=t)
    assert one(host_checks.memory(second), "memory.oom").status == "warn"
    third = host.context(now=60.0, prev=second.samples, thresholds=t)
    assert one(host_checks.memory(third), "memory.oom").status == "info"


def test_malformed_oom_samples_are_a_first_window(host: FakeHost) -> None:
    host.vmstat(oom_kill=1)
    prev = {"memory": {"oom_kill": 1, "boot_id": "boot-1", "recent_kills": [[1.0], "x", [True, 2], [None, 1]]}}
    assert one(host_checks.memory(host.context(prev=prev)), "memory.oom").status == "info"


def test_oom_kills_after_a_reboot_all_count_as_new(host: FakeHost) -> None:
    host.vmstat(oom_kill=7)
    first = host.context()
    host_checks.memory(first)
    host.boot("boot-2").vmstat(oom_kill=1)
    f = one(host_checks.memory(host.context(prev=first.samples)), "memory.oom")
    assert (f.status, f.value) == ("warn", 1)


def test_no_oom_kills_is_ok(host: FakeHost) -> None:
    assert one(host_checks.memory(host.context()), "memory.oom").status == "ok"


# --- swap


@pytest.mark.parametrize(("free_gib", "status"), [(2.0, "ok"), (0.36, "warn"), (0.08, "crit")])
def test_swap_used_thresholds(host: FakeHost, free_gib: float, status: str) -> None:
    host.meminfo(swap_total_gib=4, swap_free_gib=free_gib)  # 50%, 91%, 98% used
    f = one(host_checks.swap(host.context()), "swap.used")
    assert f.status == status and f.band == Band(90.0, 98.0, True, 2.0)


def test_no_swap_is_info(host: FakeHost) -> None:
    f = one(host_checks.swap(host.context()), "swap.used")
    assert f.status == "info" and f.summary == "no swap configured"


def test_swapin_rate_needs_two_runs_then_warns(host: FakeHost) -> None:
    host.vmstat(pswpin=1000)
    first = host.context(now=1000.0)
    f = one(host_checks.swap(first), "swap.swapin")
    assert f.status == "info" and "needs two runs" in f.summary

    host.vmstat(pswpin=1000 + 60 * 600)
    f = one(host_checks.swap(host.context(now=1060.0, prev=first.samples)), "swap.swapin")
    assert (f.status, f.value, f.unit) == ("warn", 600.0, "pages/s")

    host.vmstat(pswpin=1000 + 60 * 100)
    f = one(host_checks.swap(host.context(now=1060.0, prev=first.samples)), "swap.swapin")
    assert (f.status, f.value) == ("ok", 100.0)


# --- disk


@pytest.mark.parametrize(("free_gib", "status"), [(100, "ok"), (22.5, "warn"), (5, "warn"), (2.5, "crit")])
def test_disk_used_thresholds(host: FakeHost, disks: FakeDisks, free_gib: float, status: str) -> None:
    disks.set("/", dev=1, total_gib=250, free_gib=free_gib)  # 60%, 91%, 98% with 5 GiB free, 99%
    f = one(host_checks.disk(host.context()), "disk.used", "/")
    assert f.status == status


def test_disk_98_percent_with_10_gib_free_is_only_warn(host: FakeHost, disks: FakeDisks) -> None:
    disks.set("/", dev=1, total_gib=1000, free_gib=10)  # 99% used, but 10 GiB still free
    f = one(host_checks.disk(host.context()), "disk.used", "/")
    assert f.status == "warn" and f.summary == "/ 99% used (10.0 GiB free of 1000 GiB)" and "du" in f.hint


def test_disk_summary_reads_like_df(host: FakeHost, disks: FakeDisks) -> None:
    disks.set("/", dev=1, total_gib=250, free_gib=12.3)
    assert one(host_checks.disk(host.context()), "disk.used", "/").summary == "/ 95% used (12.3 GiB free of 250 GiB)"


def test_disk_mounts_deduped_and_missing_paths_skipped(host: FakeHost, disks: FakeDisks) -> None:
    disks.set("/", dev=1, total_gib=250, free_gib=100).set("/var/lib/docker", dev=1, total_gib=250, free_gib=100)
    subjects = {f.subject for f in host_checks.disk(host.context())}
    assert subjects == {"/"}  # /var/lib/docker is on / ; /mnt/c does not exist here

    disks.set("/mnt/c", dev=3, total_gib=500, free_gib=20)
    findings = host_checks.disk(host.context())
    assert {f.subject for f in findings} == {"/", "/mnt/c"}
    assert "Windows drive" in one(findings, "disk.used", "/mnt/c").hint


def test_disk_includes_dockers_data_root(host: FakeHost, disks: FakeDisks) -> None:
    disks.set("/", dev=1, total_gib=250, free_gib=100).set("/data/docker", dev=2, total_gib=100, free_gib=1)
    ctx = host.context(samples={"docker": {"data_root": "/data/docker"}})
    f = one(host_checks.disk(ctx), "disk.used", "/data/docker")
    assert f.status == "crit" and "docker system prune" in f.hint


def test_disk_fill_hours_from_two_samples(host: FakeHost, disks: FakeDisks) -> None:
    disks.set("/", dev=1, total_gib=250, free_gib=20)
    first = host.context(now=0.0)
    assert "needs two runs" in one(host_checks.disk(first), "disk.fill", "/").summary

    disks.set("/", dev=1, total_gib=250, free_gib=18)  # 2 GiB in one hour: 18 GiB left is 9 h
    f = one(host_checks.disk(host.context(now=3600.0, prev=first.samples)), "disk.fill", "/")
    assert (f.status, f.value, f.unit) == ("warn", 9.0, "h")
    assert f.band == Band(24.0, 6.0, False, 6.0)  # disk.fill_clear_margin_hours, not the % margin
    assert f.summary == "/ full in 9.0 h at 2.0 GiB/h"

    disks.set("/", dev=1, total_gib=250, free_gib=10)  # 10 GiB in one hour: 1 h
    assert one(host_checks.disk(host.context(now=3600.0, prev=first.samples)), "disk.fill", "/").status == "crit"

    disks.set("/", dev=1, total_gib=250, free_gib=25)
    f = one(host_checks.disk(host.context(now=3600.0, prev=first.samples)), "disk.fill", "/")
    assert (f.status, f.summary) == ("ok", "/ not filling")


def test_disk_fill_too_soon_keeps_the_older_base(host: FakeHost, disks: FakeDisks) -> None:
    disks.set("/", dev=1, total_gib=250, free_gib=20)
    first = host.context(now=0.0)
    host_checks.disk(first)
    disks.set("/", dev=1, total_gib=250, free_gib=19)
    soon = host.context(now=30.0, prev=first.samples)
    assert one(host_checks.disk(soon), "disk.fill", "/").status == "info"
    assert soon.samples["disk"]["/"] == first.samples["disk"]["/"]

    disks.set("/", dev=1, total_gib=250, free_gib=18)  # measured from t=0, not t=30
    later = host.context(now=3600.0, prev=soon.samples)
    assert one(host_checks.disk(later), "disk.fill", "/").value == 9.0


def test_disk_path_list_comes_from_thresholds(host: FakeHost, disks: FakeDisks) -> None:
    disks.set("/", dev=1, total_gib=250, free_gib=100).set("/srv", dev=4, total_gib=10, free_gib=0.1)
    t = replace(Thresholds(), disk=Disk(paths=("/", "/srv")))
    assert one(host_checks.disk(host.context(thresholds=t)), "disk.used", "/srv").status == "crit"


# --- WSL


WSLCONFIG = b"[wsl2]\nmemory=8GB\nprocessors=4\nswap=2GB\n"


def wsl_findings(host: FakeHost, total_gib: float = 7.8) -> list[Finding]:
    host.version(wsl=True).meminfo(total_gib=total_gib, available_gib=4)
    return host_checks.wsl(host.context())


def test_non_wsl_host_is_not_applicable(host: FakeHost) -> None:
    host.windows_user("alice", b"garbage")
    findings = host_checks.wsl(host.context())
    assert len(findings) == 1
    assert (findings[0].check, findings[0].status) == ("wsl.detected", "info")
    assert findings[0].summary == "not applicable (not a WSL host)"


def test_wslconfig_utf8_ok_and_cap_applied(host: FakeHost) -> None:
    host.windows_user("alice", WSLCONFIG).windows_user("Public").windows_user("Default")
    findings = wsl_findings(host)
    assert one(findings, "wsl.config", "alice").status == "ok"
    cap = one(findings, "wsl.memory_cap", "alice")
    assert (cap.status, cap.value, cap.unit) == ("ok", 7.8, "GiB")
    assert {f.subject for f in findings} == {"alice"}


@pytest.mark.parametrize("raw", [b"\xff\xfe" + WSLCONFIG.decode().encode("utf-16-le"),
                                 b"\xfe\xff" + WSLCONFIG.decode().encode("utf-16-be"),
                                 WSLCONFIG.decode().encode("utf-16-le")])
def test_wslconfig_utf16_is_crit(host: FakeHost, raw: bytes) -> None:
    host.windows_user("alice", raw)
    findings = wsl_findings(host, total_gib=31)
    f = one(findings, "wsl.config", "alice")
    assert f.status == "crit" and "re-save as UTF-8" in f.hint
    assert not [f for f in findings if f.check == "wsl.memory_cap"]  # WSL ignores the file, so no cap to check


def test_wslconfig_crlf_and_comments_parse(host: FakeHost) -> None:
    raw = b"\xef\xbb\xbf# my settings\r\n[WSL2]\r\nMemory = 8GB  # half\r\n; old\r\nprocessors=4\r\n"
    host.windows_user("alice", raw)
    findings = wsl_findings(host)
    assert one(findings, "wsl.config", "alice").status == "ok"
    assert one(findings, "wsl.memory_cap", "alice").status == "ok"


def test_wslconfig_missing_warns_with_a_suggested_cap(host: FakeHost) -> None:
    host.windows_user("alice").windows_user("Public").windows_user("All Users")
    findings = wsl_findings(host, total_gib=15.6)
    assert len(findings) == 1
    f = one(findings, "wsl.config", "alice")
    assert f.status == "warn" and "missing" in f.summary
    assert "[wsl2]" in f.hint and "memory=16GB" in f.hint and "wsl --shutdown" in f.hint


@pytest.mark.parametrize(("raw", "phrase"), [(b"[wsl2]\nprocessors=4\n", "no memory= in [wsl2]"),
                                              (b"[wsl]\nmemory=8GB\n", "no [wsl2] section"),
                                              (b"", "no [wsl2] section")])
def test_wslconfig_without_memory_warns(host: FakeHost, raw: bytes, phrase: str) -> None:
    host.windows_user("alice", raw)
    f = one(wsl_findings(host), "wsl.config", "alice")
    assert f.status == "warn" and phrase in f.summary and "memory=" in f.hint


def test_wslconfig_nonsense_values_warn_naming_the_key(host: FakeHost) -> None:
    host.windows_user("alice", b"[wsl2]\nmemory=lots\nprocessors=abc\nswap=-1\n")
    f = one(wsl_findings(host), "wsl.config", "alice")
    assert f.status == "warn"
    assert "memory=lots" in f.summary and "processors=abc" in f.summary and "swap=-1" in f.summary


def test_wslconfig_bad_processors_keeps_the_cap_check(host: FakeHost) -> None:
    host.windows_user("alice", b"[wsl2]\nmemory=8GB\nprocessors=0\n")
    findings = wsl_findings(host)
    assert one(findings, "wsl.config", "alice").status == "warn"
    assert one(findings, "wsl.memory_cap", "alice").status == "ok"


def test_memory_without_unit_is_flagged(host: FakeHost) -> None:
    host.windows_user("alice", b"[wsl2]\nmemory=8\n")
    f = one(wsl_findings(host), "wsl.config", "alice")
    assert f.status == "warn" and "memory=8" in f.summary


def test_cap_not_applied_warns(host: FakeHost) -> None:
    host.windows_user("alice", WSLCONFIG)
    f = one(wsl_findings(host, total_gib=31.2), "wsl.memory_cap", "alice")
    assert f.status == "warn" and f.summary.startswith("cap not applied") and "wsl --shutdown" in f.hint


def test_several_windows_users_each_reported(host: FakeHost) -> None:
    host.windows_user("alice", WSLCONFIG).windows_user("bob", b"[wsl2]\nmemory=16GB\n").windows_user("carol")
    findings = wsl_findings(host, total_gib=15.6)
    assert one(findings, "wsl.memory_cap", "alice").status == "warn"
    assert one(findings, "wsl.memory_cap", "bob").status == "ok"
    assert {f.subject for f in findings} == {"alice", "bob"}  # carol has none: someone else's account


def test_windows_drive_not_mounted_is_info(host: FakeHost) -> None:
    f = one(wsl_findings(host), "wsl.config")
    assert f.status == "info" and "not found" in f.summary


def test_automount_root_from_wsl_conf(host: FakeHost) -> None:
    host.write("/etc/wsl.conf", "[automount]\nroot = /\n")
    host.write("/c/Users/alice/.wslconfig", WSLCONFIG)
    assert one(wsl_findings(host), "wsl.config", "alice").status == "ok"


@pytest.mark.parametrize(("text", "size"), [("8GB", 8 * 1024**3), ("8G", 8 * 1024**3), ("8gb", 8 * 1024**3),
                                            ("8192MB", 8 * 1024**3), ("0.5TB", 512 * 1024**3),
                                            ("1048576KB", 1024**3), (" 4 GB ", 4 * 1024**3), ("512", 512),
                                            ("lots", None), ("-1", None), ("8XB", None), ("", None)])
def test_parse_size(text: str, size: int | None) -> None:
    assert wslconfig.parse_size(text) == size


# --- processes


def test_processes_top_by_rss_skipping_kernel_threads_and_vanished(host: FakeHost) -> None:
    for pid, comm, rss in [(10, "node", 2048), (11, "python3", 800), (12, "kworker/0:1", None), (13, "bash", 4),
                           (14, "dockerd", 120), (15, "Web Content (x)", 300), (16, "sshd", 8)]:
        host.process(pid, comm, rss)
    (host.root / "proc/99").mkdir()  # exited between the listing and the read
    (host.root / "proc/self").mkdir()
    f = one(host_checks.processes(host.context()), "processes.top")
    assert f.status == "ok"
    assert f.summary == ("top 5 by memory: node 2.0 GiB (pid 10), python3 800 MiB (pid 11), "
                         "Web Content (x) 300 MiB (pid 15), dockerd 120 MiB (pid 14), sshd 8 MiB (pid 16)")


def test_processes_sample_is_small(host: FakeHost) -> None:
    for pid in range(100, 180):
        host.process(pid, f"worker{pid}", pid)
    ctx = host.context()
    host_checks.processes(ctx)
    assert len(ctx.samples["processes"]["pids"]) == host_checks.SAMPLE_PIDS
    assert "179:1000" in ctx.samples["processes"]["pids"]


def test_process_growth_between_runs(host: FakeHost) -> None:
    host.process(10, "node", 500).process(11, "java", 1000).process(12, "bash", 5).process(13, "reused", 100)
    first = host.context(now=0.0)
    f = one(host_checks.processes(first), "processes.growth")
    assert f.status == "info" and "needs two runs" in f.summary

    host.process(10, "node", 2000).process(11, "java", 6000).process(12, "bash", 6)
    host.kill(13).process(13, "reused", 9000, start=5000)  # same pid, another process
    findings = host_checks.processes(host.context(now=600.0, prev=first.samples))
    node, java = one(findings, "processes.growth", "pid 10 (node)"), one(findings, "processes.growth", "pid 11 (java)")
    assert (node.status, node.value, node.unit) == ("warn", 1500.0, "MiB")
    assert (java.status, java.value) == ("crit", 5000.0)
    assert node.summary == "pid 10 (node) grew 1.5 GiB in 10 min (now 2.0 GiB)" and node.hint
    assert {f.subject for f in findings if f.check == "processes.growth"} == {"pid 10 (node)", "pid 11 (java)"}


def test_process_growth_holds_for_the_window_after_its_last_big_step(host: FakeHost) -> None:
    host.process(10, "node", 500).process(11, "java", 500)
    first = host.context(now=0.0)
    host_checks.processes(first)
    host.process(10, "node", 2548).process(11, "java", 1600)  # +2 GiB: warn; +1100 MiB: warn
    second = host.context(now=30.0, prev=first.samples)
    assert one(host_checks.processes(second), "processes.growth", "pid 10 (node)").status == "warn"
    assert second.samples["processes"]["growth"]["10:1000"] == {"at": 30.0, "mib": 2048.0, "seconds": 30.0}

    host.kill(11)  # a process that exits takes its alert with it
    third = host.context(now=630.0, prev=second.samples)  # no growth since, within growth_window_minutes (15)
    findings = host_checks.processes(third)
    f = one(findings, "processes.growth", "pid 10 (node)")
    assert (f.status, f.value) == ("warn", 2048.0)
    assert f.summary == "pid 10 (node) grew 2.0 GiB in 30 s, 10 min ago (now 2.5 GiB)"
    assert [x.subject for x in findings if x.check == "processes.growth"] == ["pid 10 (node)"]

    host.process(10, "node", 7000)  # grows again, more: the newer, bigger step counts and the window restarts
    fourth = host.context(now=700.0, prev=third.samples)
    f = one(host_checks.processes(fourth), "processes.growth", "pid 10 (node)")
    assert (f.status, f.value) == ("crit", 4452.0)

    gone = host.context(now=700.0 + 900, prev=fourth.samples)
    assert one(host_checks.processes(gone), "processes.growth").status == "ok"
    assert gone.samples["processes"]["growth"] == {}


def test_raised_growth_thresholds_drop_a_held_growth(host: FakeHost) -> None:
    host.process(10, "node", 500)
    first = host.context(now=0.0)
    host_checks.processes(first)
    host.process(10, "node", 2548)
    second = host.context(now=30.0, prev=first.samples)
    host_checks.processes(second)
    t = replace(Thresholds(), processes=Processes(growth_warn_mib=3000.0))
    assert one(host_checks.processes(host.context(now=60.0, prev=second.samples, thresholds=t)),
               "processes.growth").status == "ok"


def test_no_growth_is_one_ok_finding(host: FakeHost) -> None:
    host.process(10, "node", 500)
    first = host.context(now=0.0)
    host_checks.processes(first)
    f = one(host_checks.processes(host.context(now=60.0, prev=first.samples)), "processes.growth")
    assert f.status == "ok"


def test_pid_stat_survives_parentheses_in_comm() -> None:
    line = "42 (a) b (c)) S 1 42 42 0 -1 4194304 " + " ".join(["0"] * 12) + " 777 123 456 0 0\n"
    assert procfs.pid_stat(line) == ("a) b (c)", 777, 456)


# --- runner


def test_a_failing_family_becomes_one_finding_and_the_rest_run(host: FakeHost) -> None:
    def broken(ctx: CheckContext) -> list[Finding]:
        raise KeyError("MemTotal")

    report = runner.run_checks(host.context(), families=[("broken", broken), *runner.select(["memory"])])
    error = one(report.findings, "broken.error")
    assert (error.status, error.summary, error.hint) == ("info", "check failed: KeyError: 'MemTotal'",
                                                         "report this bug")
    assert one(report.findings, "memory.used").status == "ok"
    assert report.took_ms >= 0


def test_missing_meminfo_is_an_error_finding(host: FakeHost) -> None:
    (host.root / "proc/meminfo").unlink()
    report = runner.run_checks(host.context(), families=runner.select(["memory", "processes"]))
    assert one(report.findings, "memory.error").summary.startswith("check failed: FileNotFoundError")
    assert one(report.findings, "processes.top")


def test_docker_runs_first_and_a_failure_in_it_is_one_docker_error_finding(host: FakeHost,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    assert runner.FAMILIES[0] == ("docker", runner.docker)
    plain = runner.run_checks(host.context(), families=runner.select(["docker"]))
    assert one(plain.findings, "docker.engine").summary.startswith("Docker not found")  # the real docker_checks ran

    def broken(ctx: CheckContext) -> list[Finding]:
        raise RuntimeError("the engine answered nonsense")

    monkeypatch.setattr(docker_checks, "check", broken)
    report = runner.run_checks(host.context(), families=runner.select(["docker", "memory"]))
    error = one(report.findings, "docker.error")
    assert (error.status, error.summary) == ("info", "check failed: RuntimeError: the engine answered nonsense")
    assert one(report.findings, "memory.used").status == "ok"


def test_docker_data_root_reaches_the_disk_check(host: FakeHost, disks: FakeDisks) -> None:
    def docker(ctx: CheckContext) -> list[Finding]:
        ctx.samples["docker"] = {"data_root": "/data/docker"}
        return []

    disks.set("/", dev=1, total_gib=250, free_gib=100).set("/data/docker", dev=2, total_gib=100, free_gib=50)
    report = runner.run_checks(host.context(), families=[("docker", docker), *runner.select(["disk"])])
    assert one(report.findings, "disk.used", "/data/docker").status == "ok"


def test_select_rejects_unknown_families() -> None:
    with pytest.raises(ValueError, match="unknown check family mem; known: "):
        runner.select(["mem"])


def test_one_shot_saves_samples_and_the_second_run_sees_them(host: FakeHost, tmp_path: Path,
                                                            disks: FakeDisks) -> None:
    disks.set("/", dev=1, total_gib=250, free_gib=20)
    host.vmstat(pswpin=0).process(10, "node", 100)
    data = tmp_path / "data"

    def run(now: float) -> Report:
        return runner.one_shot(root=host.root, thresholds=Thresholds(), data_dir=data, now=now, families=HOST_FAMILIES)

    first = run(0.0)
    assert "needs two runs" in one(first.findings, "swap.swapin").summary
    saved = json.loads(paths.samples_file(data, watch=False).read_text())
    assert set(saved) == {"memory", "swap", "disk", "processes"}

    host.vmstat(pswpin=60_000)
    disks.set("/", dev=1, total_gib=250, free_gib=18)
    second = run(3600.0)
    assert one(second.findings, "swap.swapin").value == pytest.approx(16.7)
    assert one(second.findings, "disk.fill", "/").value == 9.0
    assert one(second.findings, "processes.growth").status == "ok"
    assert [p.name for p in data.iterdir()] == ["samples-oneshot.json"]  # no temp file, and not the watch's file


def test_one_shot_keeps_samples_of_families_that_did_not_run(host: FakeHost, tmp_path: Path) -> None:
    data = tmp_path / "data"
    runner.one_shot(root=host.root, thresholds=Thresholds(), data_dir=data, now=0.0,
                    families=runner.select(["swap", "memory"]))
    runner.one_shot(root=host.root, thresholds=Thresholds(), data_dir=data, now=10.0,
                    families=runner.select(["memory"]))
    assert json.loads(paths.samples_file(data, watch=False).read_text())["swap"]["t"] == 0.0


def test_corrupt_samples_file_is_a_first_run(host: FakeHost, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for junk in (b"{not json", b"\xff\xfe\x00", b"[1, 2]", b'{"swap": [1], "processes": {"pids": 3, "t": "x"}}'):
        paths.samples_file(data, watch=False).write_bytes(junk)
        report = runner.one_shot(root=host.root, thresholds=Thresholds(), data_dir=data, now=5.0,
                                 families=runner.select(["swap", "processes"]))
        assert "needs two runs" in one(report.findings, "swap.swapin").summary
        assert "needs two runs" in one(report.findings, "processes.growth").summary
    assert runner.load_samples(tmp_path / "absent.json") == {}


def test_one_shot_returns_the_report_when_samples_cannot_be_saved(host: FakeHost, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    report = runner.one_shot(root=host.root, thresholds=Thresholds(), data_dir=blocker / "data",
                             families=runner.select(["memory"]))
    assert one(report.findings, "memory.used").status == "ok"
    f = one(report.findings, "health.samples")
    assert f.status == "info" and "cannot save samples" in f.summary and "WSL_AUDIT_HOME" in f.hint


def test_one_shot_without_save_writes_nothing(host: FakeHost, tmp_path: Path) -> None:
    runner.one_shot(root=host.root, thresholds=Thresholds(), data_dir=tmp_path / "data", save=False,
                    families=runner.select(["memory"]))
    assert not (tmp_path / "data").exists()


def test_every_finding_not_ok_has_a_hint(host: FakeHost, disks: FakeDisks) -> None:
    disks.set("/", dev=1, total_gib=250, free_gib=1)
    host.meminfo(total_gib=16, available_gib=0.5, swap_total_gib=1, swap_free_gib=0).version(wsl=True)
    host.pressure(some_avg60=50, full_avg60=20).windows_user("alice", b"\xff\xfe").process(10, "node", 100)
    report = runner.run_checks(host.context(), families=HOST_FAMILIES)
    assert {f.status for f in report.findings} >= {"info", "crit"}
    assert all(f.hint for f in report.findings if f.status != "ok"), report.findings
    assert all(not f.hint for f in report.findings if f.status == "ok")


# --- thresholds


@pytest.fixture
def user_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where a test writes the user's thresholds file; the developer's own file and WSL_AUDIT_CONFIG stay out."""
    monkeypatch.delenv("WSL_AUDIT_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    return tmp_path / "health.toml"


def load_text(path: Path, text: str) -> Thresholds:
    path.write_text(text)
    return thresholds.load(path)


def test_policies_file_holds_exactly_the_dataclass_defaults() -> None:
    """policies/health.toml and the dataclasses are two copies of the defaults: same sections, keys, types, values."""
    with thresholds.DEFAULTS_FILE.open("rb") as fh:
        data = tomllib.load(fh)
    assert data.pop("version") == 1
    defaults = Thresholds()
    sections = [f.name for f in fields(Thresholds) if f.name != "sources"]
    assert sorted(data) == sorted(sections)
    for name in sections:
        section = getattr(defaults, name)
        assert sorted(data[name]) == sorted(f.name for f in fields(section)), name
        for key, got in data[name].items():
            want = getattr(section, key)
            got = tuple(got) if isinstance(got, list) else got
            assert (type(got), got) == (type(want), want), f"{name}.{key}: policies/health.toml has {got!r}"


def test_load_without_a_user_file_is_the_defaults(user_toml: Path) -> None:
    t = thresholds.load()
    assert replace(t, sources=()) == Thresholds() and t.sources == (str(thresholds.DEFAULTS_FILE),)


def test_a_user_file_overriding_one_key_keeps_the_other_defaults(user_toml: Path) -> None:
    t = load_text(user_toml, "version = 1\n[memory]\nused_warn = 85\n")
    assert t.memory == replace(Memory(), used_warn=85.0) and isinstance(t.memory.used_warn, float)
    assert replace(t, memory=Memory(), sources=()) == Thresholds()
    assert t.sources == (str(thresholds.DEFAULTS_FILE), str(user_toml))
    assert "used_warn = 85.0" in thresholds.explain(t)


@pytest.mark.parametrize(("text", "message"), [
    ("[swap]\nused_warn = 99\n", "swap.used_warn (99.0) must not be above swap.used_crit (98.0)"),
    ("[processes]\ngrowth_warn_mib = 5000\n",
     "processes.growth_warn_mib (5000.0) must not be above processes.growth_crit_mib (4096.0)"),
    ("[disk]\nhours_to_full_crit = 48\n", "disk.hours_to_full_crit (48.0) must not be above disk.hours_to_full_warn"),
    ("[memory]\nused_warn = -1\n", "memory.used_warn = -1: must not be negative"),
    ("[memory]\noom_window_minutes = -5.0\n", "memory.oom_window_minutes = -5.0: must not be negative"),
    ("[swap]\nswapin_warn = nan\n", "swap.swapin_warn = nan: use a number"),
    ("[docker]\nstorm_warn = 3.5\n", "docker.storm_warn = 3.5: expected int like 3"),
    ('[memory]\nused_warn = "80"\n', "memory.used_warn = '80': expected float like 80.0"),
    ("[memory]\nused_warn = true\n", "memory.used_warn = True: expected float like 80.0"),
    ('[disk]\npaths = "/"\n', "disk.paths = '/': expected tuple like"),
    ("[memroy]\nused_warn = 85\n", "unknown section [memroy]; known: alerting, disk, docker, memory, processes, "),
    ("[memory]\nused_wran = 85\n", "unknown key memory.used_wran; known: available_crit, clear_margin, "),
    ("memory = 85\n", "memory must be a [memory] table"),
    ("version = 2\n", "version 2 is not supported (this wsl-audit reads 1)"),
    ('[alerting]\nnotify_level = "info"\n', "alerting.notify_level = 'info': use warn or crit"),
    ("[memory\n", "not valid TOML"),
])
def test_a_bad_user_file_names_the_file_and_the_key(user_toml: Path, text: str, message: str) -> None:
    with pytest.raises(thresholds.ThresholdsError, match=f"^{re.escape(str(user_toml))}: .*{re.escape(message)}"):
        load_text(user_toml, text)


def test_an_explicit_missing_file_is_an_error_the_default_location_is_not(user_toml: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    missing = user_toml.parent / "nope.toml"
    with pytest.raises(thresholds.ThresholdsError, match=f"^{re.escape(str(missing))}: no such thresholds file"):
        thresholds.load(missing)
    monkeypatch.setenv("WSL_AUDIT_CONFIG", str(missing))
    with pytest.raises(thresholds.ThresholdsError, match="create it or unset WSL_AUDIT_CONFIG"):
        thresholds.load()
    monkeypatch.delenv("WSL_AUDIT_CONFIG")
    assert not thresholds.user_file().exists() and thresholds.load().memory == Memory()
