"""The docker checks: the real `docker` SDK against a fake Docker Engine on a Unix socket (tests/fake_docker.py)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from services.health import docker_checks
from services.health.docker_checks import check
from services.health.model import Band, CheckContext, Finding
from services.health.thresholds import Docker, Thresholds
from tests.fake_docker import ENGINE_VERSION, FakeDocker, container, die, human_duration, oom, rfc3339

NOW = 1_750_000_000.0
REPO = Path(__file__).resolve().parents[1]
REAL_LOG_SCAN_BUDGET = docker_checks.LOG_SCAN_BUDGET


@pytest.fixture(autouse=True)
def roomy_log_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inspect every uncached container, so what a test sees does not depend on how busy the machine is."""
    monkeypatch.setattr(docker_checks, "LOG_SCAN_BUDGET", 60.0)


@pytest.fixture
def root() -> Iterator[Path]:
    """A host root short enough that root/var/run/docker.sock fits a socket address (108 bytes)."""
    d = Path(tempfile.mkdtemp(prefix="wa-", dir="/tmp"))
    (d / "var" / "run").mkdir(parents=True)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def make_ctx(root: Path, docker_host: str | None = None, *, prev: dict[str, Any] | None = None,
             timeout: float = 2.0, now: float = NOW) -> CheckContext:
    t = replace(Thresholds(), docker=replace(Docker(), timeout_seconds=timeout))
    return CheckContext(root=root, thresholds=t, now=now, prev=prev or {}, docker_host=docker_host)


def run(engine: FakeDocker, root: Path, **kw: Any) -> tuple[list[Finding], CheckContext]:
    ctx = make_ctx(root, engine.base_url, **kw)
    return check(ctx), ctx


def by_key(findings: list[Finding]) -> dict[str, Finding]:
    return {f.key: f for f in findings}


def only(findings: list[Finding], check_id: str) -> list[Finding]:
    return [f for f in findings if f.check == check_id]


# ---------------------------------------------------------------- no daemon


def test_no_endpoint_is_one_info_line_without_importing_the_sdk(root: Path) -> None:
    script = f"""
import json, sys, time
from pathlib import Path
from services.health.docker_checks import check
from services.health.model import CheckContext
from services.health.thresholds import Thresholds
t0 = time.perf_counter()
found = check(CheckContext(root=Path({str(root)!r}), thresholds=Thresholds(), now=time.time()))
ms = (time.perf_counter() - t0) * 1000
print(json.dumps({{"findings": [f.to_dict() for f in found], "docker": "docker" in sys.modules,
                  "requests": "requests" in sys.modules, "ms": ms}}))
"""
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True)
    got = json.loads(out.stdout)
    assert got["docker"] is False and got["requests"] is False
    assert len(got["findings"]) == 1
    f = got["findings"][0]
    assert (f["check"], f["subject"], f["status"]) == ("docker.engine", "", "info")
    assert f["summary"] == "Docker not found (no /var/run/docker.sock, DOCKER_HOST unset)"
    assert got["ms"] < 50


def test_socket_file_without_a_daemon_is_info_not_an_error(root: Path) -> None:
    path = root / "var" / "run" / "docker.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))  # bound, never listening: connect() is refused, as after dockerd died
    ctx = make_ctx(root)
    try:
        found = check(ctx)
    finally:
        s.close()
    assert len(found) == 1
    f = found[0]
    assert (f.check, f.status) == ("docker.engine", "info")
    assert f.summary.startswith("Docker daemon not reachable: connection refused")
    assert f"unix://{path}" in f.summary
    assert "sudo service docker start" in f.hint
    assert "docker" not in ctx.samples


def test_daemon_that_accepts_but_never_answers_times_out(root: Path) -> None:
    path = root / "var" / "run" / "docker.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    s.listen(8)  # the kernel accepts into the backlog; nobody ever reads
    try:
        t0 = time.monotonic()
        found = check(make_ctx(root, timeout=0.5))
        took = time.monotonic() - t0
    finally:
        s.close()
    assert [(f.check, f.status) for f in found] == [("docker.engine", "info")]
    assert "no answer within 0.5 s" in found[0].summary
    assert took < 2.0


def test_unusable_docker_host_is_info(root: Path) -> None:
    found = check(make_ctx(root, "bogus://nowhere"))
    assert [(f.check, f.status) for f in found] == [("docker.engine", "info")]
    assert found[0].summary.startswith("Docker daemon not reachable:")


# ---------------------------------------------------------------- engine, samples, how the SDK is driven


def test_default_socket_engine_ok_and_samples(root: Path) -> None:
    c = container("web", now=NOW)
    sock = root / "var" / "run" / "docker.sock"
    with FakeDocker([c], now=NOW, path=sock, data_root="/mnt/wsl/docker-data") as engine:
        ctx = make_ctx(root)  # no DOCKER_HOST: the socket under root
        found = check(ctx)
    keys = by_key(found)
    engine_f = keys["docker.engine|"]
    assert engine_f.status == "ok"
    assert f"Docker {ENGINE_VERSION} (API 1.47)" in engine_f.summary
    assert engine_f.summary.endswith("1 of 1 container running")
    assert keys["docker.restarts|"].status == "ok"
    assert keys["docker.restarts|"].summary == "no restart storms (1 container)"
    assert [f.key for f in found] == ["docker.engine|", "docker.restarts|"]
    s = ctx.samples["docker"]
    assert s["data_root"] == "/mnt/wsl/docker-data"
    assert s["at"] == NOW and s["restarting_since"] == {}
    assert s["log_unbounded"] == {c["Id"]: False}
    # one negotiation, one info, one list, one events stream, and one inspect (log config not cached yet)
    assert engine.counts == {"version": 1, "info": 1, "list": 1, "events": 1, "inspect": 1}
    assert any(r.startswith("/v1.47/info") for r in engine.requests)
    ev = next(r for r in engine.requests if "/events?" in r)
    assert f"since={int(NOW - 600)}" in ev and f"until={int(NOW)}" in ev
    assert "filters=" in ev and "die" in ev


@pytest.mark.parametrize("age", [0.2, 1, 59, 60, 119, 120, 599, 600, 3599, 3600, 5399, 5400, 7199, 86399,
                                 7 * 86400 - 1, 7 * 86400 + 1, 14 * 86400, 59 * 86400, 60 * 86400, 729 * 86400,
                                 730 * 86400, 3000 * 86400])
def test_list_status_age_brackets_what_dockerd_printed(age: float) -> None:
    for text in (f"Up {human_duration(age)}", f"Up {human_duration(age)} (healthy)",
                 f"Exited (137) {human_duration(age)} ago", f"Restarting (1) {human_duration(age)} ago"):
        got = docker_checks._status_age(text)
        assert got is not None, text
        _code, lo, hi = got
        assert lo <= age < hi, (text, lo, hi)
    assert docker_checks._status_age("Exited (137) 2 days ago") == (137, 2 * 86400 - 1800, 3 * 86400)
    assert docker_checks._status_age("Created") is None


# ---------------------------------------------------------------- restart storms


def test_five_deaths_in_two_minutes_is_a_warn_storm(root: Path) -> None:
    c = container("api", started_at=NOW - 5, restart_count=5, now=NOW)
    events = [die(c, NOW - 120 + 24 * i) for i in range(5)]
    with FakeDocker([c], events, now=NOW) as engine:
        found, _ = run(engine, root)
    f = by_key(found)["docker.restarts|api"]
    assert f.status == "warn" and f.value == 5.0 and f.unit == "count"
    assert f.band == Band(warn=3, crit=10)
    assert "died 5 times in the last 10 min" in f.summary
    assert "docker logs --tail 50 api" in f.hint
    assert "docker.restarts|" not in by_key(found)  # no "no storms" line beside a storm


def test_twelve_deaths_is_crit(root: Path) -> None:
    c = container("worker", started_at=NOW - 2, now=NOW)
    events = [die(c, NOW - 300 + 20 * i) for i in range(12)]
    with FakeDocker([c], events, now=NOW) as engine:
        found, _ = run(engine, root)
    f = by_key(found)["docker.restarts|worker"]
    assert (f.status, f.value) == ("crit", 12.0)


def test_deaths_outside_the_window_do_not_count(root: Path) -> None:
    c = container("batch", started_at=NOW - 30, now=NOW)
    events = [die(c, NOW - 660 - 60 * i) for i in range(6)] + [die(c, NOW - 100), die(c, NOW - 40)]
    with FakeDocker([c], events, now=NOW) as engine:
        found, _ = run(engine, root)
    keys = by_key(found)
    assert (keys["docker.restarts|batch"].status, keys["docker.restarts|batch"].value) == ("ok", 2.0)
    assert keys["docker.restarts|"].summary == "no restart storms (1 container)"


def test_deaths_of_other_event_types_and_removed_containers_are_ignored(root: Path) -> None:
    c = container("web", now=NOW)
    gone = container("gone", now=NOW)  # `docker run --rm` jobs die on purpose and are gone by now
    events = [die(gone, NOW - 10 * i) for i in range(5)]
    with FakeDocker([c], events, now=NOW) as engine:
        found, _ = run(engine, root)
    assert [f.key for f in only(found, "docker.restarts")] == ["docker.restarts|"]


def test_restart_count_delta_counts_when_events_are_missing(root: Path) -> None:
    c = container("flappy", started_at=NOW - 20, restart_count=7, now=NOW)
    prev = {"docker": {"at": NOW - 120, "restart_counts": {c["Id"]: 2}}}
    with FakeDocker([c], [], now=NOW) as engine:  # the daemon's event buffer (256) lost the deaths
        found, ctx = run(engine, root, prev=prev)
    f = by_key(found)["docker.restarts|flappy"]
    assert (f.status, f.value) == ("warn", 5.0)
    assert "RestartCount +5 since the last run" in f.summary
    assert ctx.samples["docker"]["restart_counts"] == {c["Id"]: 7}


def test_restart_count_delta_from_a_run_older_than_the_window_is_ignored(root: Path) -> None:
    c = container("flappy", started_at=NOW - 20, restart_count=7, now=NOW)
    prev = {"docker": {"at": NOW - 3600, "restart_counts": {c["Id"]: 2}}}
    with FakeDocker([c], [], now=NOW) as engine:
        found, _ = run(engine, root, prev=prev)
    assert [f.key for f in only(found, "docker.restarts")] == ["docker.restarts|"]


def test_events_and_delta_take_the_larger(root: Path) -> None:
    c = container("mixed", started_at=NOW - 20, restart_count=9, now=NOW)
    prev = {"docker": {"at": NOW - 60, "restart_counts": {c["Id"]: 8}}}
    with FakeDocker([c], [die(c, NOW - 50 - i) for i in range(4)], now=NOW) as engine:
        found, _ = run(engine, root, prev=prev)
    f = by_key(found)["docker.restarts|mixed"]
    assert (f.status, f.value) == ("warn", 4.0)
    assert "RestartCount" not in f.summary


def test_restarting_for_five_minutes_is_crit(root: Path) -> None:
    c = container("stuck", "restarting", finished_at=NOW - 20, now=NOW)
    prev = {"docker": {"at": NOW - 60, "restarting_since": {c["Id"]: NOW - 360}}}
    with FakeDocker([c], [die(c, NOW - 20)], now=NOW) as engine:
        found, ctx = run(engine, root, prev=prev)
    f = by_key(found)["docker.restarts|stuck"]
    assert f.status == "crit"
    assert "restarting for 6 min" in f.summary
    assert "docker update --restart=no stuck" in f.hint
    assert ctx.samples["docker"]["restarting_since"] == {c["Id"]: NOW - 360}


def test_restarting_since_is_tracked_from_first_sight(root: Path) -> None:
    c = container("new-loop", "restarting", finished_at=NOW - 3, now=NOW)
    with FakeDocker([c], [die(c, NOW - 3)], now=NOW) as engine:
        found, ctx = run(engine, root)
        first = ctx.samples
        assert by_key(found)["docker.restarts|new-loop"].status == "ok"
        engine.now = NOW + 330  # five and a half minutes later, still restarting, its deaths out of sight
        c["State"]["FinishedAt"] = rfc3339(NOW + 327)  # it keeps dying: FinishedAt alone says "just now"
        found, _ = run(engine, root, prev=first, now=NOW + 330)
    f = by_key(found)["docker.restarts|new-loop"]
    assert f.status == "crit"
    assert "restarting for 5 min" in f.summary or "restarting for 6 min" in f.summary


def test_restarting_since_from_a_run_older_than_the_window_is_not_trusted(root: Path) -> None:
    c = container("back", "restarting", finished_at=NOW - 2, now=NOW)
    prev = {"docker": {"at": NOW - 7200, "restarting_since": {c["Id"]: NOW - 7300}}}  # Docker was down since
    with FakeDocker([c], [die(c, NOW - 2)], now=NOW) as engine:
        found, ctx = run(engine, root, prev=prev)
    assert by_key(found)["docker.restarts|back"].status == "ok"
    assert ctx.samples["docker"]["restarting_since"] == {c["Id"]: NOW - 2}


def test_restarting_with_an_old_finished_at_is_crit_on_first_sight(root: Path) -> None:
    c = container("wedged", "restarting", finished_at=NOW - 400, now=NOW)
    with FakeDocker([c], [], now=NOW) as engine:
        found, _ = run(engine, root)
    f = by_key(found)["docker.restarts|wedged"]
    assert f.status == "crit" and f.value == 0.0
    assert f.summary == "wedged: restarting for 7 min"


# ---------------------------------------------------------------- oom, health, stale, logging


def test_oom_killed_is_warn(root: Path) -> None:
    killed = container("mem-hog", "exited", oom=True, finished_at=NOW - 3600, now=NOW)
    running = container("spiky", started_at=NOW - 3 * 86400, now=NOW)
    fine = container("fine", "exited", exit_code=137, finished_at=NOW - 3600, now=NOW)  # docker kill, not OOM
    with FakeDocker([killed, running, fine], [oom(running, NOW - 30)], now=NOW) as engine:
        found, _ = run(engine, root)
    ooms = by_key(only(found, "docker.oom"))
    assert set(ooms) == {"docker.oom|mem-hog", "docker.oom|spiky"}
    assert ooms["docker.oom|mem-hog"].status == "warn"
    assert "OOMKilled, exit 137" in ooms["docker.oom|mem-hog"].summary
    assert "mem_limit" in ooms["docker.oom|mem-hog"].hint
    assert ooms["docker.oom|spiky"].summary == "spiky: out of memory 1 time in the last 10 min"


def test_unhealthy_is_warn_with_the_last_probe_output(root: Path) -> None:
    long_output = "curl: (7) Failed to connect to localhost port 8080:\n Connection refused " + "x" * 200
    sick = container("api", health="unhealthy", health_output=long_output, failing_streak=4, now=NOW)
    well = container("db", health="healthy", now=NOW)
    with FakeDocker([sick, well], now=NOW) as engine:
        found, _ = run(engine, root)
    [f] = only(found, "docker.unhealthy")
    assert (f.subject, f.status) == ("api", "warn")
    assert f.summary.startswith("api: healthcheck failing (4 in a row): curl: (7) Failed to connect")
    assert "\n" not in f.summary and f.summary.endswith("…")
    assert len(f.summary) < 160


def test_stale_exited_containers_are_one_info_line(root: Path) -> None:
    old = [container(f"old{i}", "exited", finished_at=NOW - (8 + i) * 86400, now=NOW) for i in range(7)]
    edge = container("edge", "exited", finished_at=NOW - 7 * 86400 - 3600, now=NOW)  # "7 days ago": inspected
    recent = container("recent", "exited", finished_at=NOW - 2 * 86400, now=NOW)
    with FakeDocker([*old, edge, recent], now=NOW) as engine:
        found, ctx = run(engine, root)
        # a second run knows every log config: only the "7 days ago" one is worth an inspect
        engine.counts.clear()
        found2, _ = run(engine, root, prev=ctx.samples)
        assert engine.counts["inspect"] == 1
    for fs in (found, found2):
        [f] = only(fs, "docker.stale")
        assert (f.status, f.value, f.unit) == ("info", 8.0, "count")
        assert f.summary.startswith("8 containers exited more than 7 days ago: ")
        assert f.summary.endswith(" and 3 more") and "recent" not in f.summary
        assert "docker container prune" in f.hint


def test_json_file_logs_without_max_size_are_one_warn(root: Path) -> None:
    unbounded = {"Type": "json-file", "Config": {}}
    loud = [container(f"loud{i}", log_config=unbounded, now=NOW) for i in range(6)]
    local = container("local", log_config={"Type": "local", "Config": {}}, now=NOW)  # rotates by default
    capped = container("capped", now=NOW)
    journald = container("journald", log_config={"Type": "journald", "Config": {}}, now=NOW)
    with FakeDocker([*loud, local, capped, journald], now=NOW) as engine:
        found, ctx = run(engine, root)
        engine.counts.clear()
        found2, _ = run(engine, root, prev=ctx.samples)
        assert engine.counts["inspect"] == 0  # log configs never change: remembered by container id
    for fs in (found, found2):
        [f] = only(fs, "docker.logging")
        assert (f.status, f.value) == ("warn", 6.0)
        assert f.summary.startswith("6 containers log to json-file without max-size: ")
        assert f.summary.endswith(" and 1 more")
        assert "max-size" in f.hint and "daemon.json" in f.hint and "logging:" in f.hint


def test_log_scan_budget_leaves_the_rest_for_later_runs(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    unbounded = {"Type": "json-file", "Config": {}}
    known = container("known", log_config=unbounded, now=NOW)
    later = [container(f"later{i}", log_config=unbounded, now=NOW) for i in range(2)]
    monkeypatch.setattr(docker_checks, "LOG_SCAN_BUDGET", 0.0)
    with FakeDocker([known, *later], now=NOW) as engine:
        found, ctx = run(engine, root, prev={"docker": {"at": NOW - 60, "log_unbounded": {known["Id"]: True}}})
        assert engine.counts["inspect"] == 0
    [f] = only(found, "docker.logging")
    assert f.summary == "1 container log to json-file without max-size (2 more not checked yet): known"
    assert ctx.samples["docker"]["log_unbounded"] == {known["Id"]: True}


# ---------------------------------------------------------------- a daemon misbehaving mid-stream


def test_daemon_hanging_up_mid_stream_counts_what_arrived(root: Path) -> None:
    c = container("api", started_at=NOW - 5, now=NOW)
    events = [die(c, NOW - 200 + 10 * i) for i in range(8)]
    with FakeDocker([c], events, now=NOW, hang_up_after=4) as engine:
        found, ctx = run(engine, root)
        assert engine.events_sent == 4
    keys = by_key(found)
    assert (keys["docker.restarts|api"].status, keys["docker.restarts|api"].value) == ("warn", 4.0)
    note = keys["docker.restarts|"]
    assert note.status == "info"
    assert note.summary.startswith("event stream cut short after 4 events; restart counts may be low")
    assert keys["docker.engine|"].status == "ok"
    assert "docker" in ctx.samples


def test_stalling_stream_returns_within_about_the_timeout(root: Path) -> None:
    c = container("api", started_at=NOW - 5, now=NOW)
    with FakeDocker([c], [die(c, NOW - 30), die(c, NOW - 20)], now=NOW, stall=True) as engine:
        t0 = time.monotonic()
        found, _ = run(engine, root, timeout=0.5)
        took = time.monotonic() - t0
    assert took < 1.5
    keys = by_key(found)
    assert keys["docker.restarts|api"].value == 2.0
    assert keys["docker.restarts|"].status == "info"
    assert keys["docker.restarts|"].summary.startswith("event stream stalled (no data for 0.5 s) after 2 events")


# ---------------------------------------------------------------- many containers


def test_two_hundred_containers_give_few_lines_and_stay_fast(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    crowd = [container(f"svc{i:03d}", started_at=NOW - 86400 - i * 60, now=NOW) for i in range(190)]
    crowd += [container(f"done{i}", "exited", exit_code=0, finished_at=NOW - 3600 * (i + 1), now=NOW)
              for i in range(10)]
    storm = crowd[7]
    storm["State"]["StartedAt"] = rfc3339(NOW - 5)  # just restarted
    events = [die(storm, NOW - 30 * i) for i in range(1, 5)]
    t0 = time.perf_counter()
    import docker  # noqa: F401  (once per process; timed apart from the check)

    import_ms = (time.perf_counter() - t0) * 1000
    with FakeDocker(crowd, events, now=NOW) as engine:
        monkeypatch.setattr(docker_checks, "LOG_SCAN_BUDGET", REAL_LOG_SCAN_BUDGET)
        t0 = time.perf_counter()
        cold, ctx = run(engine, root)  # nothing cached: log configs are inspected for LOG_SCAN_BUDGET only
        cold_ms = (time.perf_counter() - t0) * 1000
        cold_inspects = engine.counts["inspect"]
        monkeypatch.setattr(docker_checks, "LOG_SCAN_BUDGET", 60.0)
        t0 = time.perf_counter()
        full, ctx = run(engine, root, prev=ctx.samples)  # the rest of the log scan, unbudgeted
        full_ms = (time.perf_counter() - t0) * 1000
        monkeypatch.setattr(docker_checks, "LOG_SCAN_BUDGET", REAL_LOG_SCAN_BUDGET)
        engine.counts.clear()
        t0 = time.perf_counter()
        warm, _ = run(engine, root, prev=ctx.samples)
        warm_ms = (time.perf_counter() - t0) * 1000
        warm_counts = dict(engine.counts)
    print(f"\nimport docker {import_ms:.0f} ms (0 when already imported); 200 containers: "
          f"first run {cold_ms:.0f} ms ({cold_inspects} inspects within the log-scan budget), "
          f"rest of the log scan {full_ms:.0f} ms, warm run {warm_ms:.0f} ms ({warm_counts})")
    for fs in (cold, full, warm):
        assert len(fs) <= 4
        assert by_key(fs)["docker.restarts|svc007"].status == "warn"
        assert by_key(fs)["docker.engine|"].summary.endswith("190 of 200 containers running")
    assert warm_counts == {"version": 1, "info": 1, "list": 1, "events": 1, "inspect": 1}  # only the stormy one
    assert warm_ms < 1000  # the fake shares the GIL with the check, and CI is slow; printed figure is the one
