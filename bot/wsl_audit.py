"""`wsl-audit`: host health in one command (also `aistack health`). Stdlib argparse, not typer: the one-shot must
finish within 300 ms, and typer + pydantic alone cost more than that to import.

    wsl-audit [--json]                         check now; exit 0 ok, 1 warn, 2 crit (3: bad usage or config)
    wsl-audit --explain                        the thresholds in force and where they came from
    wsl-audit watch [--interval 30]            check every N seconds; alerts to Telegram through the outbox
    wsl-audit events [--since 24h] [--level crit] [--check ID] [--json]
    wsl-audit report [--since 24h] [--notify]  the last day's worst states and counts (for cron / a timer)

--config works before or after `watch`, --json before or after `events`; an option the command does not use is an
error, not silently ignored. --since takes 90m, 24h, 7d, a UTC date (midnight UTC) or an ISO time (UTC unless it
has an offset); the bot's /events reads a date in the bot's time zone instead.

Environment: WSL_AUDIT_CONFIG (thresholds file), WSL_AUDIT_HOME (events, samples, alert state), WSL_AUDIT_ROOT
(read /proc, /mnt/c … under this root: a host mounted into a container, or a fake tree), DOCKER_HOST.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from services.health import paths

USAGE_ERROR = 3  # 1 and 2 mean warn and crit


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse exits 2, which here means "critical"
        self.print_usage(sys.stderr)
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message}\n")


def host_name() -> str:
    return os.uname().nodename


def root() -> Path:
    return Path(os.environ.get("WSL_AUDIT_ROOT") or "/")


def _fail(message: str) -> NoReturn:
    print(f"wsl-audit: {message}", file=sys.stderr)
    raise SystemExit(USAGE_ERROR)


def _thresholds(config: str | None) -> Any:
    from services.health import thresholds

    try:
        return thresholds.load(Path(config) if config else None)
    except thresholds.ThresholdsError as exc:
        _fail(str(exc))


def check(as_json: bool = False, config: str | None = None, save: bool = True) -> int:
    """The one-shot: run every check, print a table (or JSON), return the exit code."""
    from services.health import render, runner

    t = _thresholds(config)
    report = runner.one_shot(root=root(), thresholds=t, save=save)
    if as_json:
        out = {"host": host_name(), "status": report.worst, "exit_code": report.exit_code,
               "took_ms": round(report.took_ms, 1), "findings": [f.to_dict() for f in report.sorted()]}
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
    else:
        sys.stdout.write(render.table(report) + "\n")
    return report.exit_code


def explain(config: str | None = None) -> int:
    from services.health import thresholds

    sys.stdout.write(thresholds.explain(_thresholds(config)))
    return 0


def events_cmd(since: str, level: str | None, check_id: str | None, as_json: bool) -> int:
    from services.health import events

    try:
        result = events.query(paths.events_dir(), since=events.parse_since(since), level=level, check=check_id)
    except ValueError as exc:
        _fail(str(exc))
    if as_json:
        sys.stdout.write(json.dumps({"records": result.records, "skipped_lines": result.skipped_lines}) + "\n")
        return 0
    for rec in result.records:
        subject = f" {rec['subject']}" if rec.get("subject") else ""
        level_ = str(rec.get("level") or "").upper()
        sys.stdout.write(f"{rec['ts']}  {rec['kind']:<11} {level_:<4}  {rec.get('check', '')}{subject}: "
                         f"{rec.get('summary') or rec.get('error') or ''}\n")
    if not result.records:
        sys.stdout.write(f"no events since {since} in {paths.events_dir()}\n")
    if result.skipped_lines:
        print(f"({result.skipped_lines} unreadable line(s) skipped)", file=sys.stderr)
    return 0


def outbox_notifier() -> Callable[[str], None]:
    """Alerts go to the admin chat through aistack's outbox (the bot sends them); opened once, on first use."""
    engine: list[Any] = []

    def notify(text: str) -> None:
        from services.store import outbox

        if not engine:
            from services.runtime import bootstrap
            from services.settings import load_settings

            engine.append(bootstrap(load_settings()).engine)
        outbox.enqueue(engine[0], text, source="health")

    return notify


def report_cmd(since: str, notify: bool) -> int:
    from services.health import events, render

    try:
        records = events.query(paths.events_dir(), since=events.parse_since(since)).records
    except ValueError as exc:
        _fail(str(exc))
    lines = render.day_summary(records) or [f"no warnings or alerts since {since}"]
    text = "\n".join([f"wsl-audit on {host_name()}, since {since}:", *lines])
    sys.stdout.write(text + "\n")
    if notify:
        outbox_notifier()(text)
    return 0


def watch(interval: float, config: str | None, notify: bool,
          stop: threading.Event | None = None) -> int:
    """Tick until SIGTERM/SIGINT; each tick logs what fired. Exit 0 when stopped."""
    from services.health import watch as watch_mod

    if not math.isfinite(interval) or interval <= 0:  # nan would busy-loop, inf overflow the scheduler
        _fail(f"--interval {interval}: use a finite number of seconds above 0, e.g. 30")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    send = outbox_notifier() if notify else None

    def notify_and_print(text: str) -> None:
        print(text, flush=True)
        if send is not None:
            send(text)

    t = _thresholds(config)
    print(f"wsl-audit watch: every {interval:g} s, alerts {'to Telegram via the outbox' if notify else 'printed only'}"
          f" (level {t.alerting.notify_level} and above); events in {paths.events_dir()}", flush=True)
    watch_mod.loop(interval=interval, stop=stop, root=root(), thresholds=t, data_dir=paths.data_dir(),
                   host=host_name(), notify=notify_and_print, docker_host=os.environ.get("DOCKER_HOST"))
    return 0


def _interval(text: str) -> float:
    """--interval: a finite number of seconds above 0 (nan would busy-loop the watch, inf overflow its timer)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds; use e.g. 30") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: use a finite number of seconds above 0, e.g. 30")
    return value


CONFIG_HELP = "thresholds file (default WSL_AUDIT_CONFIG or ~/.config/wsl-audit/health.toml)"
# The top-level options each command reads; any other given is refused rather than silently ignored.
USES = {None: {"json", "explain", "config", "no_save"}, "watch": {"config"}, "events": {"json"}, "report": set()}


def parser(prog: str = "wsl-audit") -> argparse.ArgumentParser:
    # A subcommand repeats a top-level option with default=SUPPRESS: given after the subcommand it counts, and
    # when absent it leaves the top-level value alone (a plain default would overwrite it).
    p = _Parser(prog=prog, description="Host health for WSL and Docker machines: memory, swap, disk, "
                "the .wslconfig cap, Docker restart storms, runaway processes.")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--explain", action="store_true", help="print the thresholds in force and exit")
    p.add_argument("--config", help=CONFIG_HELP)
    p.add_argument("--no-save", action="store_true", help="do not record samples for the next run's rates")
    sub = p.add_subparsers(dest="command")
    w = sub.add_parser("watch", help="check every --interval seconds and alert (once, with hysteresis)")
    w.add_argument("--interval", type=_interval, default=30.0, help="seconds between checks (default 30)")
    w.add_argument("--no-notify", action="store_true", help="print alerts only; do not queue them for Telegram")
    w.add_argument("--config", default=argparse.SUPPRESS, help=CONFIG_HELP)
    e = sub.add_parser("events", help="query the event log")
    e.add_argument("--since", default="24h", help="90m, 24h, 7d, a UTC date (from midnight UTC) or an ISO time "
                   "(default 24h)")
    e.add_argument("--level", choices=["info", "warn", "crit"], help="this level or worse")
    e.add_argument("--check", dest="check_id", help="a check id or family, e.g. docker or memory.used")
    e.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    r = sub.add_parser("report", help="the worst states and counts of the last day (for a daily timer)")
    r.add_argument("--since", default="24h")
    r.add_argument("--notify", action="store_true", help="also queue it for the admin chat")
    return p


def main(argv: Sequence[str] | None = None, prog: str = "wsl-audit") -> int:
    p = parser(prog)
    args = p.parse_args(argv)
    unused = [name for name in ("json", "explain", "config", "no_save")
              if getattr(args, name) not in (None, False) and name not in USES[args.command]]
    if unused:
        flags = ", ".join("--" + name.replace("_", "-") for name in unused)
        p.error(f"{flags} does not apply to `{args.command}`; drop it (see {prog} {args.command} --help)")
    if args.command == "watch":
        return watch(args.interval, args.config, notify=not args.no_notify)
    if args.command == "events":
        return events_cmd(args.since, args.level, args.check_id, args.json)
    if args.command == "report":
        return report_cmd(args.since, args.notify)
    if args.explain:
        return explain(args.config)
    return check(args.json, args.config, save=not args.no_save)


def entry() -> None:
    from bot.fast_exit import run_and_exit

    run_and_exit(main)


if __name__ == "__main__":
    entry()
