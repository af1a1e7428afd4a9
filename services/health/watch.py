"""One watch tick (checks → samples → alerts → event log → one message) and the loop that repeats it. Stdlib only.

Shared by `aistack health watch` and the bot's scheduled job. A tick holds the data dir's flock while it reads and
writes samples, alert state and events, so the two never interleave; the message is sent after the lock is let go
(the state already says it was sent), so a slow Telegram never holds up the other side.

Delivery is at-most-once on purpose: if `notify` raises, the tick logs a "notify_failed" event (with the text) and
moves on; a firing alert comes back with its next repeat, a lost "resolved" stays in the event log only. Retrying
inside the tick would hold the lock; the bot's outbox already retries when `notify` writes to it.

Bookkeeping never stops the message: a full disk is one of the things we alert on, so failing to write the event
log or the state file is logged and the tick still notifies.
"""

from __future__ import annotations

import fcntl
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.health import alerting, events, paths
from services.health.alerting import Notice
from services.health.model import RANK, CheckContext, Report
from services.health.thresholds import Thresholds

log = logging.getLogger(__name__)

LOCK_TIMEOUT = 5.0  # a tick takes well under a second; a lock held longer belongs to a stuck run, so skip this tick


@dataclass(frozen=True)
class TickResult:
    report: Report
    notices: list[Notice]  # everything evaluate produced (the event log has them all)
    sent_text: str | None  # the message notify accepted; None when there was nothing to send or it failed


def tick(*, root: Path, thresholds: Thresholds, data_dir: Path, now: float, host: str,
         notify: Callable[[str], None] | None, docker_host: str | None = None,
         check: Callable[[CheckContext], Report] | None = None,
         lock_timeout: float = LOCK_TIMEOUT) -> TickResult | None:
    """Run the checks once at `now` and alert on the result; None when another run holds the lock (tick skipped)."""
    from services.health import runner  # lazy: the bot imports this module without paying for the checks

    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock = paths.lock_file(data_dir)
    fd = _lock(lock, lock_timeout)
    if fd is None:
        log.warning("health tick skipped: another run (the bot's job or a terminal watch) has held %s for %.0f s; "
                    "the next tick tries again", lock, lock_timeout)
        return None
    try:
        samples = paths.samples_file(data_dir, watch=True)
        ctx = CheckContext(root=root, thresholds=thresholds, now=now, prev=runner.load_samples(samples),
                           docker_host=docker_host)
        report = (check or runner.run_checks)(ctx)
        # families that did not run (or failed) keep their previous samples, as in runner.one_shot
        _try("save the samples", lambda: runner.save_samples(samples, {**ctx.prev, **ctx.samples}))
        state = alerting.load_state(paths.alerts_file(data_dir))
        notices = alerting.evaluate(state, report.findings, now, thresholds.alerting)
        records = [events.observation(f, now, host) for f in report.sorted() if RANK[f.status] >= RANK["warn"]]
        records += [events.from_notice(n, now, host) for n in notices]
        _try("append to the event log", lambda: events.append(paths.events_dir(data_dir), records, now))
        _try("prune the event log", lambda: events.prune(paths.events_dir(data_dir),
                                                         thresholds.alerting.events_keep_days, now))
        _try("save the alert state", lambda: alerting.save_state(paths.alerts_file(data_dir), state))
    finally:
        os.close(fd)  # closing the descriptor releases the flock
    outgoing = alerting.for_telegram(notices, thresholds.alerting.notify_level)
    if not outgoing or notify is None:
        return TickResult(report, notices, None)
    text = alerting.render(outgoing, host)
    try:
        notify(text)
    except Exception as exc:
        log.warning("health alert not sent (%s: %s); logged as notify_failed, firing alerts come back with their "
                    "next repeat", type(exc).__name__, exc)
        failed = events.notify_failed(outgoing, text, f"{type(exc).__name__}: {exc}", now, host)
        _try("log the failed notification", lambda: events.append(paths.events_dir(data_dir), [failed], now))
        return TickResult(report, notices, None)
    return TickResult(report, notices, text)


def loop(*, interval: float, stop: threading.Event | None = None, clock: Callable[[], float] = time.time,
         **tick_kwargs: Any) -> int:
    """Tick every `interval` seconds until `stop` is set; the number of ticks run.

    The schedule runs on the monotonic clock (WSL's wall clock jumps after the host sleeps) and does not drift:
    each tick starts `interval` after the previous start; slots missed by a slow tick are skipped, not run in a
    burst. `clock` gives each tick its `now`. An exception in one tick is logged and the loop goes on.
    """
    if not math.isfinite(interval) or interval <= 0:  # nan would busy-loop, inf overflow Event.wait
        raise ValueError(f"watch interval {interval!r}: must be a finite positive number of seconds, e.g. 30")
    if stop is None:
        stop = threading.Event()
    ticks = 0
    next_at = time.monotonic()
    while not stop.is_set():
        try:
            tick(now=clock(), **tick_kwargs)
        except Exception:
            log.exception("health tick failed; the next one runs in %s s", interval)
        ticks += 1
        next_at += interval
        late = time.monotonic() - next_at
        if late > 0:
            next_at += (late // interval + 1) * interval
        stop.wait(max(0.0, next_at - time.monotonic()))
    return ticks


def _lock(path: Path, timeout: float) -> int | None:
    """An open descriptor holding an exclusive flock on `path`, or None if it stayed held for `timeout` seconds."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                return None
            time.sleep(0.05)


def _try(what: str, action: Callable[[], object]) -> None:
    try:
        action()
    except OSError as exc:
        log.warning("health tick could not %s (%s); alerting goes on", what, exc)
