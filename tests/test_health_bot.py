"""Host health through Telegram: /health, /events, the watch job's alerts through the outbox, the digest section.

The real bot against the local Bot API emulator; the host is a fake /proc tree (WSL_AUDIT_ROOT), its disk a
FakeDisks, wsl-audit's data dir a tmp folder (WSL_AUDIT_HOME), and there is no Docker (no socket, no DOCKER_HOST).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot import jobs
from services.digest import build_digest
from services.health import events, host_checks, paths, watch
from services.health.render import MAX_EVENTS, events_text
from services.runtime import bootstrap
from services.settings import SettingsError, load_settings
from services.store.db import transaction
from services.store.models import OutboxMessage
from tests.bot_fixtures import ADMIN, BotHarness
from tests.health_fixtures import FakeDisks, FakeHost, fake_host

MEMORY_97 = "memory 97% used (15.5 of 16.0 GiB, 0.5 GiB available)"


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHost:
    """A healthy fake host (memory 50% used, / 40% used); alerts fire on the first bad tick (pending_seconds 0)."""
    h = fake_host(tmp_path)
    monkeypatch.setattr(host_checks, "statfs", FakeDisks(h.root).set("/", dev=1, total_gib=100, free_gib=60))
    config = tmp_path / "health.toml"
    config.write_text("[alerting]\npending_seconds = 0\n")
    monkeypatch.setenv("WSL_AUDIT_ROOT", str(h.root))
    monkeypatch.setenv("WSL_AUDIT_HOME", str(tmp_path / "wsl-audit"))
    monkeypatch.setenv("WSL_AUDIT_CONFIG", str(config))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    return h


def critical(h: FakeHost) -> FakeHost:
    return h.meminfo(total_gib=16, available_gib=0.48)  # 97% used, 3% available: below available_crit (5%)


async def watching(h: BotHarness, interval: float) -> Any:
    """Restart the bot with HEALTH_WATCH_INTERVAL set; the scheduled "health" job."""
    h.rt = bootstrap(h.rt.settings.model_copy(update={"health_watch_interval": interval}))
    await h.restart()
    assert h.app.job_queue is not None
    [job] = h.app.job_queue.get_jobs_by_name("health")
    return job


def health_rows(h: BotHarness) -> int:
    with transaction(h.rt.engine) as conn:
        return int(conn.execute(select(func.count()).select_from(OutboxMessage)
                                .where(OutboxMessage.source == "health")).scalar_one())


def logged(kind: str, check: str = "memory.used") -> int:
    return sum(1 for r in events.query(paths.events_dir()).records if r["kind"] == kind and r.get("check") == check)


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.05)


# ------------------------------------------------------------------------------------------------ /health

async def test_health_on_a_healthy_host(bot_stack: BotHarness, host: FakeHost) -> None:
    [msg] = await bot_stack.say("/health")
    first, *rest = msg.text.splitlines()
    assert "healthy" in first and "CRIT" not in msg.text
    assert "• memory 50% used (8.0 of 16.0 GiB, 8.0 GiB available)" in rest
    assert "• Docker not found (no /var/run/docker.sock, DOCKER_HOST unset)" in rest
    assert rest[-1].startswith("0 critical, 0 warning, ")
    assert paths.samples_file(watch=False).exists()  # /health keeps its own samples for the next one's rates
    assert not paths.samples_file(watch=True).exists()  # the watch's file is the watch's alone


async def test_health_while_the_watch_job_runs_leaves_the_watch_samples_alone(bot_stack: BotHarness,
                                                                              host: FakeHost) -> None:
    job = await watching(bot_stack, 3600)
    await job.run(bot_stack.app)
    watch_samples = paths.samples_file(watch=True).read_bytes()
    host.vmstat(oom_kill=2)
    await bot_stack.say("/health")
    await bot_stack.say("/health")
    assert paths.samples_file(watch=True).read_bytes() == watch_samples
    assert paths.samples_file(watch=False).exists()  # rates for /health: from its own previous run


async def test_health_on_a_critical_host_is_worst_first_with_the_hint(bot_stack: BotHarness, host: FakeHost) -> None:
    critical(host)
    [msg] = await bot_stack.say("/health")
    lines = msg.text.splitlines()
    assert lines[0].startswith("🔴") and lines[0].endswith(": CRITICAL")
    assert lines[1] == f"🔴 memory.used: {MEMORY_97}"
    assert "→ see processes.top for the biggest consumers" in lines[2]
    assert lines[-1].startswith("1 critical, 0 warning, ")
    assert logged("fired") == 0  # /health checks; only the watch alerts


async def test_health_with_a_bad_thresholds_file_says_which_key(bot_stack: BotHarness, host: FakeHost,
                                                                tmp_path: Path) -> None:
    (tmp_path / "health.toml").write_text("[memory]\nused_wran = 85\n")
    [msg] = await bot_stack.say("/health")
    assert msg.text.startswith("⚠️ Cannot check host health: ") and "unknown key memory.used_wran" in msg.text


async def test_health_is_a_quick_action_and_in_help(bot_stack: BotHarness, host: FakeHost) -> None:
    [start] = await bot_stack.say("/start")
    assert any(b["text"] == "🩺 Health" and b["callback_data"] == "cmd:health" for b in start.buttons)
    [help_] = await bot_stack.say("/help")
    assert "/health — Host health now" in help_.text and "/events — Host health events" in help_.text


# ------------------------------------------------------------------------------------------------ /events

async def test_events_lists_a_fired_alert_and_says_nothing_when_empty(bot_stack: BotHarness, host: FakeHost) -> None:
    [empty] = await bot_stack.say("/events")
    assert "Nothing happened since" in empty.text

    critical(host)
    result = await asyncio.to_thread(jobs.health_tick, bot_stack.rt)
    assert result is not None and result.sent_text is not None
    await bot_stack.emu.wait_for_sent(2, chat_id=ADMIN)  # the alert, before /events asks, so replies stay in order
    [msg] = await bot_stack.say("/events")
    lines = msg.text.splitlines()
    assert lines[0].startswith("🩺 Host health events since ") and lines[0].endswith(" UTC")
    assert any(line.startswith("🔴 ") and line.endswith(f" fired memory.used: {MEMORY_97}") for line in lines)
    assert "1 warn/crit observation(s) of memory.used" in lines

    [week] = await bot_stack.say("/events 7d")
    assert f"fired memory.used: {MEMORY_97}" in week.text
    [future] = await bot_stack.say("/events 2999-01-01")
    assert "Nothing happened since 2999-01-01" in future.text


@pytest.mark.parametrize(("args", "problem"), [("junk", "'junk' is not a time."), ("-5h", "'-5h' is not a time."),
                                               ("24h extra", "One argument at most.")])
async def test_events_with_a_bad_argument_gets_the_usage(bot_stack: BotHarness, host: FakeHost, args: str,
                                                         problem: str) -> None:
    [msg] = await bot_stack.say(f"/events {args}")
    assert msg.text == f"{problem} Usage: /events [since], e.g. /events 90m, /events 7d or /events 2026-11-20 " \
                       "(midnight in the bot's time zone); default: 24h"


async def test_events_too_far_back_says_so(bot_stack: BotHarness, host: FakeHost) -> None:
    [msg] = await bot_stack.say("/events 99999999d")
    assert msg.text == "since '99999999d' is too far back (before the year 1): use e.g. 30d or a date like 2026-11-20."


async def test_events_reads_a_date_in_the_bots_time_zone_as_its_title_says(bot_stack: BotHarness,
                                                                          host: FakeHost) -> None:
    bot_stack.rt = bootstrap(bot_stack.rt.settings.model_copy(update={"tz": "Europe/Berlin"}))
    await bot_stack.restart()
    t = datetime(2026, 11, 20, 0, 30, tzinfo=ZoneInfo("Europe/Berlin")).timestamp()  # 2026-11-19 23:30 UTC
    events.append(paths.events_dir(), [{"ts": events.iso(t), "kind": "fired", "host": "laptop", "check": "disk.used",
                                        "subject": "/", "level": "warn", "summary": "/ 91% used"}], t)
    [msg] = await bot_stack.say("/events 2026-11-20")
    lines = msg.text.splitlines()
    assert lines[0] == "🩺 Host health events since 2026-11-20 00:00 Europe/Berlin"
    assert lines[1].endswith("11-20 00:30 fired disk.used /: / 91% used")  # shown in the zone it was asked in


def test_events_text_keeps_the_newest_and_counts_the_older() -> None:
    t0 = 1_800_000_000.0
    recs: list[dict[str, Any]] = [
        {"ts": events.iso(t0 + i), "kind": "fired", "check": "disk.used", "subject": f"/m{i}", "level": "warn",
         "summary": f"/m{i} 91% used"} for i in range(MAX_EVENTS + 5)]
    recs.append({"ts": events.iso(t0 + 99), "kind": "resolved", "check": "disk.used", "subject": "/m0",
                 "level": "warn", "duration": 7500.0})
    recs.append({"ts": events.iso(t0 + 100), "kind": "notify_failed", "error": "OperationalError: locked"})
    lines = events_text(events.QueryResult(recs, 2), t0, UTC)
    assert lines[0] == "… 7 older"
    assert len(lines) == 1 + MAX_EVENTS + 1
    assert lines[-4].endswith("fired disk.used /m34: /m34 91% used") and lines[-4].startswith("🟡 ")
    assert lines[-3].endswith("resolved disk.used /m0 after 2 h 5 min") and lines[-3].startswith("✅ ")
    assert lines[-2].endswith("alert not sent: OperationalError: locked")
    assert lines[-1] == "(2 unreadable line(s) skipped)"


def test_events_text_with_observations_only_says_none_alerted() -> None:
    rec = {"ts": events.iso(1_800_000_000.0), "kind": "observation", "check": "swap.used", "level": "warn"}
    assert events_text(events.QueryResult([rec, rec], 0), 0.0, UTC) == [
        "2 warn/crit observation(s) of swap.used, none long enough to alert"]


# ------------------------------------------------------------------------------------------------ the watch job

async def test_watch_job_alerts_once_through_the_outbox_and_does_not_flood(bot_stack: BotHarness,
                                                                          host: FakeHost) -> None:
    critical(host)
    job = await watching(bot_stack, 0.3)  # scheduled ticks, as in production, only faster
    [alert] = await bot_stack.emu.wait_for_sent(1, chat_id=ADMIN)
    first, *rest = alert.text.splitlines()
    assert first.startswith("🔴 wsl-audit on ") and first.endswith(": 1 critical")
    assert rest[0].startswith(f"CRIT memory.used: {MEMORY_97} — for ")
    assert "What to do:" in rest and any("see processes.top" in line for line in rest)

    await until(lambda: logged("observation") >= 4)  # more ticks within the hour: logged, not sent again
    assert logged("fired") == 1 and logged("repeat") == 0
    assert health_rows(bot_stack) == 1 and len(bot_stack.emu.sent(ADMIN)) == 1
    assert job.name == "health" and job.job.trigger.interval.total_seconds() == 0.3


async def test_watch_job_resolves_and_says_so_once(bot_stack: BotHarness, host: FakeHost) -> None:
    job = await watching(bot_stack, 3600)
    critical(host)
    await job.run(bot_stack.app)  # what the scheduler does every HEALTH_WATCH_INTERVAL seconds
    await bot_stack.emu.wait_for_sent(1, chat_id=ADMIN)
    host.meminfo()  # back to 50% used, well past the clear margin
    await job.run(bot_stack.app)
    [_, resolved] = await bot_stack.emu.wait_for_sent(2, chat_id=ADMIN)
    assert "1 resolved" in resolved.text and "resolved: memory.used after " in resolved.text
    await job.run(bot_stack.app)
    assert health_rows(bot_stack) == 2


async def test_watch_is_off_by_default(bot_stack: BotHarness) -> None:
    assert bot_stack.app.job_queue is not None
    assert bot_stack.app.job_queue.get_jobs_by_name("health") == ()


async def test_a_bad_thresholds_file_or_a_failing_tick_is_logged_and_the_job_goes_on(
        bot_stack: BotHarness, host: FakeHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    job = await watching(bot_stack, 3600)
    critical(host)
    config = tmp_path / "health.toml"
    config.write_text("[alerting]\npending_secs = 0\n")
    with caplog.at_level(logging.ERROR, logger="bot.jobs"):
        await job.run(bot_stack.app)
    assert f"health tick skipped: {config}: unknown key alerting.pending_secs; known: " in caplog.text
    assert not paths.events_dir().exists() and health_rows(bot_stack) == 0

    config.write_text("[alerting]\npending_seconds = 0\n")  # fixed: the next tick reads it, no restart
    real_tick = watch.tick

    def broken(**kwargs: Any) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(watch, "tick", broken)
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="bot.jobs"):
        await job.run(bot_stack.app)
    assert "health tick failed; the next one runs in 3600 s" in caplog.text and "disk on fire" in caplog.text

    monkeypatch.setattr(watch, "tick", real_tick)
    await job.run(bot_stack.app)
    [alert] = await bot_stack.emu.wait_for_sent(1, chat_id=ADMIN)
    assert f"CRIT memory.used: {MEMORY_97}" in alert.text
    assert bot_stack.app.job_queue is not None and len(bot_stack.app.job_queue.get_jobs_by_name("health")) == 1


# ------------------------------------------------------------------------------------------------ digest

async def test_digest_has_host_health_after_a_tick_and_not_before(bot_stack: BotHarness, host: FakeHost) -> None:
    assert "Host health" not in [s.title for s in build_digest(bot_stack.rt).sections]
    [quiet] = await bot_stack.say("/digest")
    assert "Host health" not in quiet.text

    critical(host)
    await asyncio.to_thread(jobs.health_tick, bot_stack.rt)
    await bot_stack.emu.wait_for_sent(2, chat_id=ADMIN)  # the alert
    [section] = [s for s in build_digest(bot_stack.rt).sections if s.title == "Host health"]
    assert section.lines == ["🔴 memory.used: worst CRIT (1 observation, 1 alert)"]
    [digest] = await bot_stack.say("/digest")
    assert "Host health\n🔴 memory.used: worst CRIT (1 observation, 1 alert)" in digest.text


# ------------------------------------------------------------------------------------------------ settings

def test_health_watch_interval_is_validated_and_documented(tmp_path: Path) -> None:
    assert load_settings(env_file=None, aistack_home=tmp_path).health_watch_interval == 0
    assert load_settings(env_file=None, aistack_home=tmp_path, health_watch_interval="30").health_watch_interval == 30
    for bad in ("-1", "86401", "soon"):
        with pytest.raises(SettingsError, match=r"^HEALTH_WATCH_INTERVAL: "):
            load_settings(env_file=None, aistack_home=tmp_path, health_watch_interval=bad)
    env = (Path(__file__).resolve().parents[1] / ".env.example").read_text()
    assert "\n# --- Host health (wsl-audit) " in env and "\nHEALTH_WATCH_INTERVAL=0\n" in env
    for name in ("WSL_AUDIT_HOME", "WSL_AUDIT_CONFIG", "WSL_AUDIT_ROOT"):
        assert f"\n{name}=" in env


def test_doctor_reports_the_thresholds_and_the_watch(host: FakeHost, tmp_path: Path) -> None:
    from services import doctor

    ok = doctor.check_health(load_settings(env_file=None, aistack_home=tmp_path, health_watch_interval=30))
    assert ok.status == "ok" and str(tmp_path / "health.toml") in ok.detail and "every 30 s" in ok.detail
    (tmp_path / "health.toml").write_text("[memory]\nused_wran = 85\n")
    bad = doctor.check_health(load_settings(env_file=None, aistack_home=tmp_path))
    assert bad.status == "fail" and "unknown key memory.used_wran" in bad.detail and "--explain" in bad.fix
