"""The event log (services/health/events.py) and the watch tick and loop (services/health/watch.py)."""

from __future__ import annotations

import fcntl
import json
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from services.health import events, host_checks, paths, runner, watch
from services.health.alerting import Notice, load_state
from services.health.model import Band, CheckContext, Finding, Report, Status
from services.health.thresholds import Thresholds
from tests.health_fixtures import FakeDisks, FakeHost, fake_host

DAY = 86400.0
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC).timestamp()


def finding(check: str, subject: str = "", status: Status = "warn", value: float = 85.0) -> Finding:
    return Finding(check, subject, status, value, "%", f"{check} {subject} at {value:g}".replace("  ", " "),
                   hint=f"look at {check}" if status in ("warn", "crit") else "")


def rec(kind: str, t: float, check: str = "memory.used", level: str = "warn") -> dict:
    return {"ts": events.iso(t), "kind": kind, "host": "laptop", "check": check, "subject": "", "level": level}


# --- the event log ---------------------------------------------------------------------------------------------


def test_record_shapes() -> None:
    f = Finding("memory.used", "", "crit", 97.0, "%", "memory 97% used", "close apps", Band(80, 95, True, 5))
    assert events.observation(f, T0 + 0.25, "laptop") == {
        "ts": "2026-11-20T12:00:00.250Z", "kind": "observation", "host": "laptop", "check": "memory.used",
        "subject": "", "level": "crit", "value": 97.0, "unit": "%", "summary": "memory 97% used",
        "hint": "close apps"}
    n = Notice("resolved", "disk.used|/", "disk.used", "/", "warn", 80.0, "%", "/ 80% used", "", T0, 7500.0)
    assert events.from_notice(n, T0 + 7500, "laptop") == {
        "ts": "2026-11-20T14:05:00.000Z", "kind": "resolved", "host": "laptop", "check": "disk.used",
        "subject": "/", "level": "warn", "value": 80.0, "unit": "%", "summary": "/ 80% used", "hint": "",
        "since": "2026-11-20T12:00:00.000Z", "duration": 7500.0}
    assert events.parse_ts("2026-11-20T14:05:00.000Z") == T0 + 7500


def test_append_and_query_round_trip_over_several_days(tmp_path: Path) -> None:
    d = tmp_path / "events"
    for i in range(4):  # one day file each, written out of order
        t = T0 + (3 - i) * DAY
        events.append(d, [rec("observation", t), rec("fired", t + 1, level="crit")], t)
    assert sorted(p.name for p in d.iterdir()) == [f"2026-11-{day}.jsonl" for day in (20, 21, 22, 23)]
    result = events.query(d)
    assert result.skipped_lines == 0
    assert [r["ts"] for r in result.records] == sorted(r["ts"] for r in result.records)
    assert len(result.records) == 8
    since = events.query(d, since=T0 + 2 * DAY + 1)
    assert [(r["kind"], r["ts"]) for r in since.records] == [
        ("fired", "2026-11-22T12:00:01.000Z"), ("observation", "2026-11-23T12:00:00.000Z"),
        ("fired", "2026-11-23T12:00:01.000Z")]
    assert events.query(tmp_path / "nothing-yet") == events.QueryResult([], 0)


def test_since_reads_only_the_files_that_can_hold_matches(tmp_path: Path) -> None:
    d = tmp_path / "events"
    events.append(d, [rec("observation", T0)], T0)
    (d / "2026-11-19.jsonl").write_text("garbage\n" * 5)  # read → 5 skipped lines
    (d / "notes.txt").write_text("not an event file\n")
    assert events.query(d, since=T0).skipped_lines == 0
    assert events.query(d, since=T0 - DAY).skipped_lines == 5
    assert events.query(d).skipped_lines == 5


def test_level_filter_means_this_level_or_worse(tmp_path: Path) -> None:
    d = tmp_path / "events"
    events.append(d, [rec("observation", T0, level="info"), rec("observation", T0 + 1, level="warn"),
                      rec("observation", T0 + 2, level="crit"),
                      {"ts": events.iso(T0 + 3), "kind": "notify_failed", "host": "laptop", "error": "x"}], T0)
    assert [r["level"] for r in events.query(d, level="warn").records] == ["warn", "crit"]
    assert [r["level"] for r in events.query(d, level="crit").records] == ["crit"]
    assert len(events.query(d).records) == 4
    with pytest.raises(ValueError, match="level 'bad'"):
        events.query(d, level="bad")


def test_check_filter_matches_an_id_or_a_dotted_prefix(tmp_path: Path) -> None:
    d = tmp_path / "events"
    checks = ["docker.restarts", "docker.health", "docker", "dockerd.x", "memory.used"]
    events.append(d, [rec("observation", T0 + i, check=c) for i, c in enumerate(checks)], T0)
    assert [r["check"] for r in events.query(d, check="docker").records] == ["docker.restarts", "docker.health",
                                                                              "docker"]
    assert [r["check"] for r in events.query(d, check="docker.restarts").records] == ["docker.restarts"]
    assert events.query(d, check="docker.rest").records == []


def test_corrupt_and_partial_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    d = tmp_path / "events"
    events.append(d, [rec("observation", T0)], T0)
    with open(d / "2026-11-20.jsonl", "a") as fh:
        fh.write('not json\n[1, 2]\n{"ts": "yesterday", "kind": "fired"}\n\n{"ts": "2026-11-20T12:00:05Z", "ki')
    events.append(d, [rec("fired", T0 + 9)], T0 + 9)  # lands after the partial line, on the same physical line
    result = events.query(d)
    assert [r["kind"] for r in result.records] == ["observation"]
    assert result.skipped_lines == 5


def _writer(directory: str, worker: int, count: int) -> None:
    for i in range(count):
        events.append(Path(directory), [{"ts": events.iso(T0 + i), "kind": "observation", "worker": worker, "i": i,
                                         "pad": "x" * (3000 + worker)}], T0)


def test_concurrent_appends_from_four_processes_keep_lines_whole(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w, 200)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    result = events.query(tmp_path)
    assert result.skipped_lines == 0
    assert sorted((r["worker"], r["i"]) for r in result.records) == [(w, i) for w in range(4) for i in range(200)]
    assert all(len(r["pad"]) == 3000 + r["worker"] for r in result.records)


@pytest.mark.parametrize(("text", "expected"), [
    ("24h", T0 - DAY), ("90m", T0 - 90 * 60), ("7d", T0 - 7 * DAY), ("30s", T0 - 30), ("1.5h", T0 - 5400),
    (" 2w ", T0 - 14 * DAY), ("2026-11-20", T0 - 12 * 3600), ("2026-11-20T14:00Z", T0 + 2 * 3600),
    ("2026-11-20T14:00:00+02:00", T0), ("2026-11-20T13:30:00", T0 + 5400)])
def test_parse_since(text: str, expected: float) -> None:
    assert events.parse_since(text, now=T0) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "24", "-5h", "5y", "h", "2026-13-01", "24 hours"])
def test_parse_since_refuses_junk_and_says_what_works(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not a time: use a duration like 90m, 24h or 7d"):
        events.parse_since(text, now=T0)


@pytest.mark.parametrize("text", ["99999999d", "9" * 400 + "w", "0001-01-01T00:30+01:00"])
def test_parse_since_too_far_back_says_so(text: str) -> None:
    with pytest.raises(events.OutOfRange, match=r"is too far back \(before the year 1\): use e\.g\. 30d or a date"):
        events.parse_since(text, now=T0)


def test_parse_since_reads_a_date_or_a_naive_time_in_the_zone_given() -> None:
    berlin = ZoneInfo("Europe/Berlin")  # UTC+1 in November
    assert events.parse_since("2026-11-20", now=T0, tz=berlin) == T0 - 13 * 3600
    assert events.parse_since("2026-11-20T14:00", tz=berlin) == T0 + 3600
    assert events.parse_since("2026-11-20T14:00Z", tz=berlin) == T0 + 2 * 3600  # an explicit offset wins
    assert events.parse_since("24h", now=T0, tz=berlin) == T0 - DAY


# --- the watch tick -------------------------------------------------------------------------------------------


class Script:
    """A fake `check`: returns the scripted findings for each call in turn and counts runs in the samples."""

    def __init__(self, *runs: list[Finding]) -> None:
        self.runs = list(runs)
        self.calls: list[CheckContext] = []

    def __call__(self, ctx: CheckContext) -> Report:
        self.calls.append(ctx)
        ctx.samples["runs"] = int(ctx.prev.get("runs", 0)) + 1
        findings = self.runs[min(len(self.calls), len(self.runs)) - 1]
        return Report(findings, 1.0)


def tick(data_dir: Path, check: Script, now: float, notify=None, **kw) -> watch.TickResult | None:
    return watch.tick(root=Path("/"), thresholds=Thresholds(), data_dir=data_dir, now=now, host="laptop",
                      notify=notify, check=check, **kw)


BAD = [finding("memory.used", status="crit", value=97), finding("disk.used", "/mnt/c"),
       finding("docker.restarts", "api", "crit", 12), finding("swap.used", status="ok", value=10)]


def test_tick_pending_then_one_message_with_every_fired_alert(tmp_path: Path) -> None:
    sent: list[str] = []
    script = Script(BAD)
    first = tick(tmp_path, script, T0, sent.append)
    assert first is not None and first.notices == [] and first.sent_text is None and sent == []
    assert {k: e["status"] for k, e in load_state(paths.alerts_file(tmp_path)).items()} == {
        "memory.used|": "pending", "disk.used|/mnt/c": "pending", "docker.restarts|api": "pending"}

    second = tick(tmp_path, script, T0 + 60, sent.append)
    assert second is not None and sorted(n.kind for n in second.notices) == ["fired"] * 3
    assert len(sent) == 1 and second.sent_text == sent[0]
    assert sent[0].splitlines()[0] == "🔴 wsl-audit on laptop: 2 critical, 1 warning"
    for what in ("CRIT memory.used:", "WARN disk.used /mnt/c:", "CRIT docker.restarts api:"):
        assert what in sent[0]
    assert all(e["status"] == "firing" for e in load_state(paths.alerts_file(tmp_path)).values())
    assert script.calls[1].prev == {"runs": 1}  # the samples one run left reached the next
    log = events.query(paths.events_dir(tmp_path)).records
    assert [r["kind"] for r in log] == ["observation"] * 6 + ["fired"] * 3
    assert {r["check"] for r in log} == {"memory.used", "disk.used", "docker.restarts"}

    assert tick(tmp_path, script, T0 + 120, sent.append).sent_text is None  # type: ignore[union-attr]
    assert len(sent) == 1


def _hold_lock(path: str, held: multiprocessing.synchronize.Event, release: multiprocessing.synchronize.Event) -> None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    held.set()
    release.wait(30)


def test_tick_is_skipped_while_another_process_holds_the_lock(tmp_path: Path, caplog) -> None:
    ctx = multiprocessing.get_context("spawn")
    held, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold_lock, args=(str(paths.lock_file(tmp_path)), held, release))
    proc.start()
    try:
        assert held.wait(30)
        script = Script(BAD)
        with caplog.at_level(logging.WARNING, logger="services.health.watch"):
            assert tick(tmp_path, script, T0, lock_timeout=0.2) is None
        assert script.calls == []
        assert "health tick skipped" in caplog.text
    finally:
        release.set()
        proc.join(30)
    assert tick(tmp_path, script, T0) is not None  # the lock died with its holder


def test_a_failing_notify_keeps_the_state_and_logs_notify_failed(tmp_path: Path) -> None:
    def broken(text: str) -> None:
        raise ConnectionError("telegram unreachable")

    script = Script(BAD)
    tick(tmp_path, script, T0, broken)
    result = tick(tmp_path, script, T0 + 60, broken)
    assert result is not None and len(result.notices) == 3 and result.sent_text is None
    assert all(e["status"] == "firing" for e in load_state(paths.alerts_file(tmp_path)).values())
    [failed] = [r for r in events.query(paths.events_dir(tmp_path)).records if r["kind"] == "notify_failed"]
    assert failed["error"] == "ConnectionError: telegram unreachable"
    assert sorted(failed["keys"]) == ["disk.used|/mnt/c", "docker.restarts|api", "memory.used|"]
    assert failed["text"].startswith("🔴 wsl-audit on laptop")
    sent: list[str] = []  # the firing alerts come back with their repeat, not before
    tick(tmp_path, script, T0 + 120, sent.append)
    assert sent == []
    tick(tmp_path, script, T0 + 60 + 3600, sent.append)
    assert len(sent) == 1 and "still, for 1 h 1 min" in sent[0]


def test_a_failing_check_releases_the_lock(tmp_path: Path) -> None:
    def boom(ctx: CheckContext) -> Report:
        raise RuntimeError("check exploded")

    with pytest.raises(RuntimeError):
        watch.tick(root=Path("/"), thresholds=Thresholds(), data_dir=tmp_path, now=T0, host="h", notify=None,
                   check=boom)
    assert tick(tmp_path, Script(BAD), T0, lock_timeout=0) is not None


def test_loop_ticks_until_stopped_and_survives_a_failing_tick(tmp_path: Path, caplog) -> None:
    stop = threading.Event()
    nows: list[float] = []

    def check(ctx: CheckContext) -> Report:
        nows.append(ctx.now)
        if len(nows) == 2:
            raise RuntimeError("one bad tick")
        if len(nows) == 4:
            stop.set()
        return Report([], 1.0)

    clock = iter(T0 + 60 * i for i in range(100))
    with caplog.at_level(logging.ERROR, logger="services.health.watch"):
        ran = watch.loop(interval=0.01, stop=stop, clock=lambda: next(clock), root=Path("/"),
                         thresholds=Thresholds(), data_dir=tmp_path, host="laptop", notify=None, check=check)
    assert ran == 4
    assert nows == [T0, T0 + 60, T0 + 120, T0 + 180]
    assert "health tick failed" in caplog.text
    for bad in (0, -1, float("nan"), float("inf")):  # nan would busy-loop, inf overflow Event.wait
        with pytest.raises(ValueError, match="must be a finite positive number of seconds"):
            watch.loop(interval=bad, stop=stop)


# --- the watch over a fake host: the real checks, the default thresholds, a 30 s clock step ---------------------

STEP = 30.0


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHost:
    """A healthy fake host (no Docker, / 40% used): only what a test changes can alert."""
    h = fake_host(tmp_path)
    monkeypatch.setattr(host_checks, "statfs", FakeDisks(h.root).set("/", dev=1, total_gib=100, free_gib=60))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    return h


def watch_host(host: FakeHost, data_dir: Path, ticks: int,
               change: Callable[[int], object]) -> tuple[list[tuple[float, str, str]], list[str]]:
    """Real watch ticks every STEP s with Thresholds(); change(i) edits the host before tick i.

    Returns (seconds since the first tick, kind, key) of every notice, and the messages sent.
    """
    notices: list[tuple[float, str, str]] = []
    sent: list[str] = []
    for i in range(ticks):
        change(i)
        result = watch.tick(root=host.root, thresholds=Thresholds(), data_dir=data_dir, now=T0 + i * STEP,
                            host="laptop", notify=sent.append)
        assert result is not None
        notices += [(i * STEP, n.kind, n.key) for n in result.notices]
    return notices, sent


def test_defaults_hold_a_one_run_signal_past_the_pending_time() -> None:
    t = Thresholds()  # what the two tests below rely on
    assert (t.alerting.pending_seconds, t.memory.oom_window_minutes, t.processes.growth_window_minutes) == (60, 15, 15)


def test_watch_fires_once_for_an_oom_kill_and_resolves_after_the_window(host: FakeHost, tmp_path: Path) -> None:
    notices, sent = watch_host(host, tmp_path / "data", 40, lambda i: host.vmstat(oom_kill=0 if i < 2 else 3))
    # the kill is seen at 60 s; it must hold for pending_seconds (60) and clears oom_window_minutes (15) after it
    assert notices == [(120.0, "fired", "memory.oom|"), (960.0, "resolved", "memory.oom|")]
    assert len(sent) == 2
    assert ("WARN memory.oom: the kernel killed 3 process(es) for lack of memory in the last 15 min, the latest "
            "60 s ago (3 since boot) — for 1 min") in sent[0]
    assert "resolved: memory.oom after 15 min" in sent[1]


def test_watch_fires_once_for_a_process_growing_once_and_resolves_after_the_window(host: FakeHost,
                                                                                  tmp_path: Path) -> None:
    notices, sent = watch_host(host, tmp_path / "data", 40,
                               lambda i: host.process(10, "node", 500 if i < 2 else 500 + 2048))
    assert notices == [(120.0, "fired", "processes.growth|pid 10 (node)"),
                       (960.0, "resolved", "processes.growth|pid 10 (node)")]
    assert "WARN processes.growth pid 10 (node): pid 10 (node) grew 2.0 GiB in 30 s, 60 s ago" in sent[0]
    assert "resolved: processes.growth pid 10 (node) after 15 min" in sent[1]


def test_a_one_shot_between_two_ticks_leaves_the_oom_delta_to_the_watch(host: FakeHost, tmp_path: Path) -> None:
    data = tmp_path / "data"
    watch_host(host, data, 1, lambda i: None)
    watch_samples = paths.samples_file(data, watch=True).read_bytes()

    def manual(now: float) -> Finding:
        report = runner.one_shot(root=host.root, thresholds=Thresholds(), data_dir=data, now=now)
        [f] = [f for f in report.findings if f.check == "memory.oom"]
        return f

    manual(T0 + 5)
    host.vmstat(oom_kill=3)
    assert (manual(T0 + 10).status, manual(T0 + 15).value) == ("warn", 3)  # the one-shots see the kill …
    assert paths.samples_file(data, watch=True).read_bytes() == watch_samples  # … in their own samples file
    result = watch.tick(root=host.root, thresholds=Thresholds(), data_dir=data, now=T0 + STEP, host="laptop",
                        notify=None)
    assert result is not None
    [f] = [f for f in result.report.findings if f.check == "memory.oom"]
    assert (f.status, f.value) == ("warn", 3) and "since the last run" in f.summary  # … and so does the watch


def test_a_one_shot_measures_rates_from_the_watchs_fresher_samples(host: FakeHost, tmp_path: Path) -> None:
    data = tmp_path / "data"
    host.vmstat(pswpin=0)
    runner.one_shot(root=host.root, thresholds=Thresholds(), data_dir=data, now=T0 - DAY)  # a manual run long ago
    watch_host(host, data, 1, lambda i: None)  # the watch's tick at T0 is newer
    watch_samples = paths.samples_file(data, watch=True).read_bytes()
    host.vmstat(pswpin=600 * 10)
    report = runner.one_shot(root=host.root, thresholds=Thresholds(), data_dir=data, now=T0 + 10)
    [f] = [f for f in report.findings if f.check == "swap.swapin"]
    assert (f.status, f.value) == ("warn", 600.0)  # over the 10 s since the tick, not averaged over a day
    assert paths.samples_file(data, watch=True).read_bytes() == watch_samples
    assert json.loads(paths.samples_file(data, watch=False).read_bytes())["swap"]["t"] == T0 + 10


def test_event_file_lines_are_plain_json(tmp_path: Path) -> None:
    events.append(tmp_path, [rec("observation", T0)], T0)
    [line] = (tmp_path / "2026-11-20.jsonl").read_text().splitlines()
    assert json.loads(line)["ts"] == "2026-11-20T12:00:00.000Z"


def test_the_watch_keeps_the_event_log_to_its_last_days(tmp_path: Path) -> None:
    """events_keep_days bounds the log: older day files go, recent ones and other files stay; 0 keeps all."""
    ev = paths.events_dir(tmp_path)
    for age in (0, 29, 30, 31, 400):
        events.append(ev, [{"kind": "observation", "check": "memory.used", "level": "warn"}], T0 - age * DAY)
    (ev / "notes.txt").write_text("mine")
    assert events.prune(ev, 0, T0) == 0 and len(list(ev.glob("*.jsonl"))) == 5
    tick(tmp_path, Script(BAD), T0)  # the default keeps 30 days before today's UTC date
    days = sorted(p.name for p in ev.glob("*.jsonl"))
    assert days == ["2026-10-21.jsonl", "2026-10-22.jsonl", "2026-11-20.jsonl"]
    assert (ev / "notes.txt").read_text() == "mine"
    assert events.query(ev, since=T0 - 40 * DAY).records  # what is kept still reads back
