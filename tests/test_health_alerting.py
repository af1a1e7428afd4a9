"""The alert state machine (services/health/alerting.py) driven by a controllable clock."""

from __future__ import annotations

import json

import pytest

from services.health.alerting import (
    TELEGRAM_LIMIT,
    Kind,
    Notice,
    evaluate,
    for_telegram,
    human_duration,
    load_state,
    render,
    save_state,
)
from services.health.model import Band, Finding, Status
from services.health.thresholds import Alerting

T0 = 1_800_000_000.0
MIN, HOUR = 60.0, 3600.0
ALERTING = Alerting(pending_seconds=60.0, repeat_seconds=3600.0, notify_level="warn")
MEM = Band(warn=80.0, crit=95.0, clear_margin=5.0)


def mem(value: float) -> Finding:
    status: Status = "crit" if value >= 95 else "warn" if value >= 80 else "ok"
    return Finding("memory.used", "", status, value, "%", f"memory {value:g}% used",
                   hint="close what you do not need" if status != "ok" else "", band=MEM)


def disk(mount: str, status: Status = "warn") -> Finding:
    return Finding("disk.used", mount, status, 91.0, "%", f"{mount} 91% used", hint="prune docker images")


def restarts(name: str, status: Status = "crit") -> Finding:
    return Finding("docker.restarts", name, status, 12.0, "count", f"{name} died 12 times in 10 min")


def kinds(notices: list[Notice]) -> list[str]:
    return [n.kind for n in notices]


def fire_memory(state: dict, value: float = 85.0) -> float:
    """A memory alert that fired at the returned time."""
    assert evaluate(state, [mem(value)], T0, ALERTING) == []
    assert kinds(evaluate(state, [mem(value)], T0 + MIN, ALERTING)) == ["fired"]
    return T0 + MIN


def test_fires_only_after_pending_seconds() -> None:
    state: dict = {}
    assert evaluate(state, [mem(85)], T0, ALERTING) == []
    assert state["memory.used|"]["status"] == "pending"
    assert evaluate(state, [mem(86)], T0 + 59, ALERTING) == []
    [n] = evaluate(state, [mem(87)], T0 + 60, ALERTING)
    assert (n.kind, n.key, n.check, n.subject, n.level, n.value, n.unit) == (
        "fired", "memory.used|", "memory.used", "", "warn", 87, "%")
    assert (n.since, n.duration, n.summary, n.hint) == (T0, 60, "memory 87% used", "close what you do not need")
    assert state["memory.used|"]["status"] == "firing"


def test_blip_shorter_than_pending_leaves_no_trace() -> None:
    state: dict = {}
    evaluate(state, [mem(85)], T0, ALERTING)
    assert evaluate(state, [mem(50)], T0 + 30, ALERTING) == []
    assert state == {}
    assert evaluate(state, [mem(85)], T0 + 60, ALERTING) == []  # a new condition: pending starts again
    assert evaluate(state, [mem(85)], T0 + 119, ALERTING) == []
    assert kinds(evaluate(state, [mem(85)], T0 + 120, ALERTING)) == ["fired"]


def test_ok_and_info_findings_without_state_are_ignored() -> None:
    state: dict = {}
    info = Finding("docker.stale", "old", "info", 9.0, "d", "exited 9 days ago")
    assert evaluate(state, [mem(40), info], T0, ALERTING) == []
    assert state == {}


def test_firing_alert_repeats_hourly_not_sooner() -> None:
    state: dict = {}
    fired = fire_memory(state)
    assert evaluate(state, [mem(85)], fired + 59 * MIN, ALERTING) == []
    [n] = evaluate(state, [mem(85)], fired + 60 * MIN, ALERTING)
    assert (n.kind, n.duration) == ("repeat", 61 * MIN)
    assert evaluate(state, [mem(85)], fired + 119 * MIN, ALERTING) == []
    assert kinds(evaluate(state, [mem(85)], fired + 120 * MIN, ALERTING)) == ["repeat"]


def test_hysteresis_holds_until_clear_margin_past_threshold() -> None:
    state: dict = {}
    fired = fire_memory(state, 81)
    assert evaluate(state, [mem(79)], fired + 60, ALERTING) == []
    assert state["memory.used|"]["status"] == "firing"
    assert evaluate(state, [mem(75.5)], fired + 120, ALERTING) == []
    [n] = evaluate(state, [mem(74)], fired + 180, ALERTING)
    assert (n.kind, n.level, n.value, n.summary) == ("resolved", "warn", 74, "memory 74% used")
    assert state == {}


def test_value_bouncing_around_threshold_never_flaps() -> None:
    state: dict = {}
    fired = fire_memory(state, 81)
    notices: list[Notice] = []
    for i in range(1, 3 * 60 + 1):  # three hours of one-minute ticks, 79 and 81 in turn
        notices += evaluate(state, [mem(79 if i % 2 else 81)], fired + i * MIN, ALERTING)
    assert kinds(notices) == ["repeat", "repeat", "repeat"]


def test_value_bouncing_before_it_fires_never_fires() -> None:
    state: dict = {}  # pending resets whenever the raw status is fine: hysteresis is for firing alerts only
    notices = [n for i in range(30) for n in evaluate(state, [mem(81 if i % 2 == 0 else 79)], T0 + i * MIN, ALERTING)]
    assert notices == []


def test_hysteresis_on_a_lower_is_worse_band() -> None:
    band = Band(warn=10.0, crit=5.0, higher_is_worse=False, clear_margin=2.0)

    def free(v: float) -> Finding:
        return Finding("disk.free", "/", "warn" if v < 10 else "ok", v, "GiB", f"{v:g} GiB free", band=band)

    state: dict = {}
    evaluate(state, [free(9)], T0, ALERTING)
    assert kinds(evaluate(state, [free(9)], T0 + MIN, ALERTING)) == ["fired"]
    assert evaluate(state, [free(11.5)], T0 + 2 * MIN, ALERTING) == []
    assert kinds(evaluate(state, [free(12)], T0 + 3 * MIN, ALERTING)) == ["resolved"]


def test_without_band_the_raw_status_decides() -> None:
    state: dict = {}
    evaluate(state, [disk("/mnt/c")], T0, ALERTING)
    evaluate(state, [disk("/mnt/c")], T0 + MIN, ALERTING)
    assert kinds(evaluate(state, [disk("/mnt/c", "ok")], T0 + 2 * MIN, ALERTING)) == ["resolved"]


def test_warn_to_crit_escalates_at_once_and_downgrades_quietly() -> None:
    state: dict = {}
    fired = fire_memory(state)
    [n] = evaluate(state, [mem(97)], fired + 10, ALERTING)
    assert (n.kind, n.level, n.value) == ("escalated", "crit", 97)
    assert evaluate(state, [mem(93)], fired + 20, ALERTING) == []  # within the margin: held at crit
    assert state["memory.used|"]["level"] == "crit"
    assert evaluate(state, [mem(90)], fired + 30, ALERTING) == []  # crit cleared, still warn: no message
    assert state["memory.used|"]["level"] == "warn"
    # the repeat clock runs from the escalation, and the repeat carries the level the alert stands at now
    assert evaluate(state, [mem(90)], fired + 10 + 59 * MIN, ALERTING) == []
    [r] = evaluate(state, [mem(90)], fired + 10 + HOUR, ALERTING)
    assert (r.kind, r.level) == ("repeat", "warn")


def test_crit_dropping_straight_to_ok_resolves_at_crit() -> None:
    state: dict = {}
    evaluate(state, [mem(97)], T0, ALERTING)
    assert [(n.kind, n.level) for n in evaluate(state, [mem(97)], T0 + MIN, ALERTING)] == [("fired", "crit")]
    assert evaluate(state, [mem(78)], T0 + 2 * MIN, ALERTING) == []  # past crit's margin, inside warn's: held
    assert state["memory.used|"]["level"] == "warn"
    assert [(n.kind, n.level) for n in evaluate(state, [mem(60)], T0 + 3 * MIN, ALERTING)] == [("resolved", "warn")]


def test_resolved_once_with_its_duration() -> None:
    state: dict = {}
    fire_memory(state)
    [n] = evaluate(state, [mem(50)], T0 + 2 * HOUR + 5 * MIN, ALERTING)
    assert (n.kind, n.since, n.duration) == ("resolved", T0, 2 * HOUR + 5 * MIN)
    assert render([n], "laptop").splitlines()[1] == "resolved: memory.used after 2 h 5 min"
    assert evaluate(state, [mem(50)], T0 + 3 * HOUR, ALERTING) == []
    assert state == {}


def test_disappearing_subject_resolves_only_when_its_check_ran() -> None:
    state: dict = {}
    first = [disk("/mnt/c"), restarts("api"), mem(85)]
    evaluate(state, first, T0, ALERTING)
    assert sorted(kinds(evaluate(state, first, T0 + MIN, ALERTING))) == ["fired", "fired", "fired"]
    # /mnt/c unmounted (disk.used still ran for /), Docker down (docker.restarts did not run)
    notices = evaluate(state, [disk("/", "ok"), mem(85)], T0 + 2 * MIN, ALERTING,
                       checks_ran={"disk.used", "memory.used", "docker.daemon"})
    assert [(n.kind, n.key) for n in notices] == [("resolved", "disk.used|/mnt/c")]
    assert notices[0].summary == "/mnt/c 91% used"  # the last thing known about it
    assert "docker.restarts|api" in state
    # Docker back and the container deleted: the check ran with nothing to say about it
    notices = evaluate(state, [mem(85)], T0 + 3 * MIN, ALERTING, checks_ran={"memory.used", "docker.restarts"})
    assert [(n.kind, n.key) for n in notices] == [("resolved", "docker.restarts|api")]


def test_disappearing_pending_key_leaves_no_trace() -> None:
    state: dict = {}
    evaluate(state, [disk("/mnt/c"), mem(85)], T0, ALERTING)
    assert evaluate(state, [mem(85)], T0 + 30, ALERTING, checks_ran={"memory.used", "disk.used"}) == []
    assert list(state) == ["memory.used|"]


def test_checks_ran_defaults_to_the_checks_with_findings() -> None:
    state: dict = {}
    evaluate(state, [restarts("api"), mem(85)], T0, ALERTING)
    evaluate(state, [restarts("api"), mem(85)], T0 + MIN, ALERTING)
    assert evaluate(state, [mem(85)], T0 + 2 * MIN, ALERTING) == []  # no docker.restarts finding: not known to run
    assert kinds(evaluate(state, [restarts("web", "ok"), mem(85)], T0 + 3 * MIN, ALERTING)) == ["resolved"]


def test_the_worst_finding_counts_when_a_key_repeats() -> None:
    state: dict = {}
    evaluate(state, [mem(97), mem(50)], T0, ALERTING)
    [n] = evaluate(state, [mem(50), mem(97)], T0 + MIN, ALERTING)
    assert (n.kind, n.level) == ("fired", "crit")


def test_notify_level_crit_drops_warn_alerts_and_their_resolution() -> None:
    crit_only = Alerting(pending_seconds=60.0, repeat_seconds=3600.0, notify_level="crit")
    state: dict = {}
    sent: list[Notice] = []
    bad = [mem(85), restarts("api")]
    for t, findings in [(T0, bad), (T0 + MIN, bad), (T0 + HOUR + MIN, bad),
                        (T0 + HOUR + 2 * MIN, [mem(50), restarts("api", "ok")])]:
        sent += for_telegram(evaluate(state, findings, t, crit_only), "crit")
    assert [(n.kind, n.key) for n in sent] == [("fired", "docker.restarts|api"), ("repeat", "docker.restarts|api"),
                                               ("resolved", "docker.restarts|api")]


def test_notify_level_crit_sends_the_resolution_of_an_escalated_alert() -> None:
    crit_only = Alerting(pending_seconds=60.0, repeat_seconds=3600.0, notify_level="crit")
    state: dict = {}
    sent: list[Notice] = []
    for t, v in [(T0, 85), (T0 + MIN, 85), (T0 + 2 * MIN, 97), (T0 + 3 * MIN, 50)]:
        sent += for_telegram(evaluate(state, [mem(v)], t, crit_only), "crit")
    assert kinds(sent) == ["escalated", "resolved"]


def test_notify_level_warn_sends_everything() -> None:
    state: dict = {}
    fire_memory(state)
    assert kinds(for_telegram(evaluate(state, [mem(50)], T0 + 2 * MIN, ALERTING), "warn")) == ["resolved"]
    with pytest.raises(ValueError, match="use warn or crit"):
        for_telegram([], "info")


def test_state_survives_a_restart(tmp_path) -> None:
    path = tmp_path / "alerts.json"
    state: dict = {}
    fired = fire_memory(state)
    evaluate(state, [mem(85), disk("/mnt/c")], fired, ALERTING)  # disk is pending when the process stops
    save_state(path, state)
    assert [p.name for p in tmp_path.iterdir()] == ["alerts.json"]  # no temporary file left behind

    state = load_state(path)  # a new process: memory does not fire again, disk's pending time counts
    notices = evaluate(state, [mem(85), disk("/mnt/c")], fired + 30 * MIN, ALERTING)
    assert [(n.kind, n.key, n.since) for n in notices] == [("fired", "disk.used|/mnt/c", fired)]
    save_state(path, state)

    state = load_state(path)  # and the repeat clock is the one from before the restart
    assert evaluate(state, [mem(85), disk("/mnt/c")], fired + 59 * MIN, ALERTING) == []
    notices = evaluate(state, [mem(85), disk("/mnt/c")], fired + HOUR, ALERTING)
    assert [(n.kind, n.key, n.since) for n in notices] == [("repeat", "memory.used|", T0)]


def test_corrupt_state_file_starts_fresh_and_is_kept_aside(tmp_path) -> None:
    path = tmp_path / "alerts.json"
    path.write_text('{"version": 1, "alerts": {"memory.used|": {"status": "fir')
    assert load_state(path) == {}
    assert not path.exists()
    assert (tmp_path / "alerts.json.corrupt").read_text().startswith('{"version": 1')
    path.write_text(json.dumps({"version": 1, "alerts": {"memory.used|": {"status": "sleeping"}}}))
    assert load_state(path) == {}
    path.write_text("[]")
    assert load_state(path) == {}
    assert load_state(tmp_path / "missing.json") == {}
    assert not (tmp_path / "missing.json.corrupt").exists()


def _notice(kind: Kind, i: int, level: str = "warn", hint: str = "") -> Notice:
    return Notice(kind=kind, key=f"docker.restarts|c{i}", check="docker.restarts", subject=f"c{i}",
                  level=level, value=12.0, unit="count", summary=f"container c{i} died 12 times " + "x" * 80,
                  hint=hint, since=T0, duration=3 * MIN)


def test_render_one_message_worst_first_with_deduplicated_hints() -> None:
    notices = [
        Notice("fired", "memory.used|", "memory.used", "", "warn", 85.0, "%", "memory 85% used", "close apps", T0,
               180.0),
        Notice("escalated", "disk.used|/", "disk.used", "/", "crit", 99.0, "%", "/ 99% used", "prune images", T0,
               720.0),
        Notice("resolved", "swap.used|", "swap.used", "", "warn", 40.0, "%", "swap 40% used", "", T0, 7500.0),
        Notice("repeat", "docker.restarts|api", "docker.restarts", "api", "crit", 12.0, "count", "api died 12 times",
               "prune images", T0, 2 * HOUR),
    ]
    assert render(notices, "laptop") == "\n".join([
        "🔴 wsl-audit on laptop: 2 critical, 1 warning, 1 resolved",
        "CRIT disk.used /: / 99% used — now critical, for 12 min",
        "CRIT docker.restarts api: api died 12 times — still, for 2 h",
        "WARN memory.used: memory 85% used — for 3 min",
        "resolved: swap.used after 2 h 5 min",
        "",
        "What to do:",
        "• prune images",
        "• close apps",
    ])
    assert render(notices[2:3], "laptop").startswith("✅ wsl-audit on laptop: 1 resolved\n")
    assert render(notices[:1], "laptop").startswith("🟠 wsl-audit on laptop: 1 warning\n")


def test_render_batches_many_notices_under_telegram_limit() -> None:
    notices = [_notice("fired", i, "crit" if i % 3 == 0 else "warn", hint=f"hint {i % 4}") for i in range(60)]
    text = render(notices, "laptop")
    assert len(text.encode("utf-16-le")) // 2 <= TELEGRAM_LIMIT
    lines = text.splitlines()
    assert lines[0] == "🔴 wsl-audit on laptop: 20 critical, 40 warnings"
    shown = [ln[:4] for ln in lines if ln.startswith(("CRIT", "WARN"))]
    assert shown == sorted(shown) and shown[0] == "CRIT" and shown[-1] == "WARN"  # worst first
    more = next(ln for ln in lines if ln.startswith("… and "))
    assert len(shown) + int(more.split()[2]) == 60
    hints = lines[lines.index("What to do:") + 1:] if "What to do:" in lines else []
    assert len(hints) == len(set(hints)) <= 4  # hints go last, once each, only if there is room
    assert len(render(notices * 10, "laptop").encode("utf-16-le")) // 2 <= TELEGRAM_LIMIT


def test_render_clips_a_runaway_summary() -> None:
    n = Notice("fired", "x|", "x", "", "warn", None, "", "y" * 10_000, "z" * 10_000, T0, 60.0)
    text = render([n], "laptop")
    assert len(text) < 2000 and "…" in text


@pytest.mark.parametrize(("seconds", "text"), [(0, "0 s"), (59.9, "59 s"), (60, "1 min"), (3599, "59 min"),
                                               (3600, "1 h"), (7500, "2 h 5 min"), (86400 + 3 * 3600, "1 d 3 h"),
                                               (2 * 86400 + 59, "2 d")])
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text
