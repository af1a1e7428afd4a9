"""Docker checks: is the engine there, and do containers crash-loop, get OOM-killed, fail healthchecks, pile up
exited, or log without bounds.

Driven by the real `docker` SDK's APIClient: `/version` (API negotiation), `/info`, `/containers/json?all=1`
once, `/events` for the storm window, and `/containers/{id}/json` only for containers whose list entry hints at
something (restarting, started within the window, died, unhealthy, exit 137, near the stale age) or whose log
config is not cached yet. An SDK call costs ~1-4 ms, so 200 inspects would blow the one-shot's 300 ms; a
container's log config never changes, so it is remembered across runs by id, and learnt for at most
LOG_SCAN_BUDGET per run. `import docker` alone costs ~100 ms, so it happens here only once an endpoint exists.

Samples left in ctx.samples["docker"]: at, data_root (the disk check reads it), restart_counts {id: n},
restarting_since {id: epoch first seen restarting}, log_unbounded {id: bool}.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from services.health.model import Band, CheckContext, Finding, Status

SOCKET = "/var/run/docker.sock"
NAMES_SHOWN = 5
LOG_SCAN_BUDGET = 0.05  # s per run spent inspecting containers only for their log config; the rest wait a run
_STATUS = re.compile(r"^(?:Up|(?:Exited|Restarting) \((-?\d+)\)) (.+?)(?: ago)?(?: \([^)]*\))?$")
_AMOUNT = re.compile(r"^(\d+) (second|minute|hour|day|week|month|year)s?$")
_UNIT = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400, "month": 30 * 86400,
         "year": 365 * 86400}
NOT_FOUND_HINT = ("install Docker Engine in this distro, or turn on Docker Desktop's WSL integration for it; "
                  "ignore this if you do not use Docker")


def check(ctx: CheckContext) -> list[Finding]:
    if ctx.docker_host:
        where = ctx.docker_host
    else:
        sock = ctx.path(SOCKET)
        if not sock.exists():  # before the SDK import: no Docker must cost nothing
            return [Finding("docker.engine", "", "info", None, "",
                            f"Docker not found (no {SOCKET}, DOCKER_HOST unset)", NOT_FOUND_HINT)]
        where = f"unix://{sock}"
    try:
        import docker
    except ImportError:
        return [Finding("docker.engine", "", "info", None, "", f"Docker endpoint {where} found but the docker "
                        "SDK is not installed", "install this project's dependencies: `pip install -e .`")]
    timeout = ctx.thresholds.docker.timeout_seconds
    api = None
    try:
        api = _client(docker, where, bool(ctx.docker_host), timeout)
        return _audit(ctx, api, where)
    except _errors() as exc:
        return [_unreachable(where, exc, timeout)]
    finally:
        if api is not None:
            api.close()


def _errors() -> tuple[type[Exception], ...]:
    """What talking to a daemon can raise: the SDK's own, urllib3's (not OSErrors), requests' and the OS's,
    and ValueError/StreamParseError for answers that are not the JSON they should be."""
    import docker
    import urllib3

    return (docker.errors.DockerException, docker.errors.StreamParseError, urllib3.exceptions.HTTPError, OSError,
            ValueError)


def _client(docker: Any, where: str, from_env: bool, timeout: float) -> Any:
    kwargs: dict[str, Any] = {"base_url": where}
    if from_env:  # DOCKER_TLS_VERIFY / DOCKER_CERT_PATH go with DOCKER_HOST, as for the docker CLI
        kwargs = docker.utils.kwargs_from_env(environment={**os.environ, "DOCKER_HOST": where})
    api = docker.APIClient(version="auto", timeout=timeout, **kwargs)
    if where.startswith("unix://"):
        api.trust_env = False  # proxy and netrc lookups mean nothing on a socket and cost ~1 ms per call
    return api


def _unreachable(where: str, exc: BaseException, timeout: float) -> Finding:
    reason = _reason(exc, timeout)
    if reason == "permission denied":
        hint = "add yourself to the docker group (`sudo usermod -aG docker $USER`, then log in again)"
    else:
        hint = ("start it (`sudo service docker start`, or Docker Desktop with WSL integration for this distro), "
                "or point DOCKER_HOST at a running daemon")
    return Finding("docker.engine", "", "info", None, "", f"Docker daemon not reachable: {reason} ({where})", hint)


def _reason(exc: BaseException, timeout: float) -> str:
    """The root cause in a few words: the SDK wraps the OS error in two or three layers of requests/urllib3."""
    todo: list[BaseException] = [exc]
    seen: set[int] = set()
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, ConnectionRefusedError):
            return "connection refused (nothing listens on the socket)"
        if isinstance(e, PermissionError):
            return "permission denied"
        if isinstance(e, FileNotFoundError):
            return "socket not found"
        if isinstance(e, TimeoutError) or "Timeout" in type(e).__name__:
            return f"no answer within {timeout:g} s"
        todo.extend(x for x in (e.__cause__, e.__context__, *e.args) if isinstance(x, BaseException))
    return " ".join(str(exc).split())[:160] or type(exc).__name__


def _audit(ctx: CheckContext, api: Any, where: str) -> list[Finding]:
    t = ctx.thresholds.docker
    window = t.storm_window_minutes * 60
    info = api.info()
    listed = [c for c in api.containers(all=True) if isinstance(c, dict) and c.get("Id")]
    events, cut = _events(api, ctx.now - window, ctx.now, t.timeout_seconds)
    prev: Mapping[str, Any] = ctx.prev.get("docker") or {}
    # counts and first sightings from a run older than the window (Docker was down, cron is slow) say nothing now
    fresh = isinstance(prev.get("at"), int | float) and 0 <= ctx.now - prev["at"] <= window
    prev_counts: Mapping[str, int] = (prev.get("restart_counts") or {}) if fresh else {}
    prev_since: Mapping[str, float] = (prev.get("restarting_since") or {}) if fresh else {}
    deaths = Counter(str(e["Actor"].get("ID")) for e in events if e.get("Action") == "die")
    ooms = Counter(str(e["Actor"].get("ID")) for e in events if e.get("Action") == "oom")
    log_unbounded = {cid: bool(v) for cid, v in (prev.get("log_unbounded") or {}).items()}

    docs: dict[str, dict[str, Any]] = {}
    for c in listed:
        if _worth_inspecting(c, window, t.stale_days * 86400, deaths, ooms, prev_since):
            _inspect(api, c["Id"], docs)
    started = time.monotonic()
    for c in listed:
        if c["Id"] not in log_unbounded and c["Id"] not in docs and time.monotonic() - started < LOG_SCAN_BUDGET:
            _inspect(api, c["Id"], docs)
    for cid, doc in docs.items():
        log_unbounded[cid] = _log_unbounded(doc)

    present = {c["Id"] for c in listed}
    samples: dict[str, Any] = {
        "at": ctx.now,
        "data_root": info.get("DockerRootDir"),
        "restart_counts": {cid: int(doc.get("RestartCount") or 0) for cid, doc in docs.items()},
        "restarting_since": {},
        "log_unbounded": {cid: v for cid, v in log_unbounded.items() if cid in present},
    }
    ctx.samples["docker"] = samples
    running = sum(c.get("State") == "running" for c in listed)
    findings = [Finding("docker.engine", "", "ok", None, "",
                        f"Docker {info.get('ServerVersion', '?')} (API {api.api_version}) at {where}: "
                        f"{running} of {_count(len(listed), 'container')} running")]
    findings += _restarts(ctx, listed, docs, deaths, prev_counts, prev_since, samples, cut, len(events))
    findings += _ooms(listed, docs, ooms, t.storm_window_minutes)
    findings += _unhealthy(listed, docs)
    findings += _stale(ctx, listed, docs, t.stale_days)
    findings += _logging(listed, samples["log_unbounded"])
    return findings


def _inspect(api: Any, cid: str, docs: dict[str, dict[str, Any]]) -> None:
    import docker

    try:
        doc = api.inspect_container(cid)
    except docker.errors.NotFound:  # removed between the list and now
        return
    if isinstance(doc, dict):
        docs[cid] = doc


def _events(api: Any, since: float, until: float, timeout: float) -> tuple[list[dict[str, Any]], str]:
    """Container die/oom events in [since, until], and why the stream ended early ("" when it did not).

    APIClient.events() sends timeout=None (it is made to follow the daemon forever) and turns a hang-up into a
    quiet end; this is its body with our read timeout, so a stalled or cut stream shows and cannot hang the run.
    `until` is rounded down: a future `until` keeps dockerd's stream open until that moment.
    """
    params = {"since": int(since), "until": int(until),
              "filters": json.dumps({"type": ["container"], "event": ["die", "oom"]})}
    resp = api._get(api._url("/events"), params=params, stream=True, timeout=timeout)
    api._raise_for_status(resp)
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    note = ""
    try:
        for ev in api._stream_helper(resp, decode=True):
            if isinstance(ev, dict) and isinstance(ev.get("Actor"), dict) and since <= _event_time(ev) <= until:
                got.append(ev)
            if time.monotonic() > deadline:  # a daemon trickling events stops here, not at the next read timeout
                note = f"event stream too slow (over {timeout:g} s)"
                break
    except _errors() as exc:  # urllib3's ProtocolError (hang-up), ReadTimeoutError (stall), a torn JSON line
        stalled = isinstance(exc, TimeoutError) or "Timeout" in type(exc).__name__
        note = f"event stream stalled (no data for {timeout:g} s)" if stalled else "event stream cut short"
    finally:
        resp.close()
    return got, note


def _event_time(ev: Mapping[str, Any]) -> float:
    if isinstance(ev.get("timeNano"), int):
        return float(ev["timeNano"] / 1e9)
    return float(ev.get("time") or 0)


def _name(c: Mapping[str, Any]) -> str:
    names = [n for n in c.get("Names") or [] if isinstance(n, str)]
    # legacy links add "/other/alias" names; the container's own has a single slash
    return next((n[1:] for n in names if n.count("/") == 1), names[0].lstrip("/") if names else c["Id"][:12])


def _status_age(status: str) -> tuple[int | None, float, float] | None:
    """(exit code, min age s, max age s) from the list view's Status ("Up 3 hours (healthy)", "Exited (1) 2 days
    ago"), which dockerd writes with go-units HumanDuration; None when the text is not one of those."""
    m = _STATUS.match(status)
    if m is None:
        return None
    code = int(m.group(1)) if m.group(1) is not None else None
    text = m.group(2)
    fixed = {"Less than a second": (0, 1), "About a minute": (60, 120), "About an hour": (3600, 7200)}
    if text in fixed:
        return (code, *fixed[text])
    a = _AMOUNT.match(text)
    if a is None:
        return None
    n, unit = int(a.group(1)), _UNIT[a.group(2)]
    slack = 1800 if unit >= 3600 else 0  # from hours up, go-units rounds to the nearest hour first
    return code, n * unit - slack, (n + 1) * unit


def _worth_inspecting(c: Mapping[str, Any], window: float, stale: float, deaths: Counter[str],
                      ooms: Counter[str], prev_since: Mapping[str, float]) -> bool:
    cid, state, status = c["Id"], c.get("State"), str(c.get("Status") or "")
    if cid in deaths or cid in ooms or state == "restarting" or cid in prev_since:
        return True
    age = _status_age(status)
    if state == "running":
        # started within the window: it may have restarted (its RestartCount delta counts) or be flapping
        return age is None or age[1] < window or "(unhealthy)" in status
    if state == "exited":
        # exit 137 is SIGKILL, which the OOM killer sends; near the stale age the text is too coarse to tell
        return age is None or age[0] == 137 or age[1] < stale < age[2]
    return False


def _epoch(stamp: Any) -> float | None:
    """Engine timestamps (RFC 3339, nanoseconds, UTC); None for the zero time "0001-01-01T00:00:00Z"."""
    if not isinstance(stamp, str) or not stamp or stamp.startswith("0001-"):
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _state(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    return _dict(doc.get("State"))


def _restarts(ctx: CheckContext, listed: list[dict[str, Any]], docs: dict[str, dict[str, Any]],
              deaths: Counter[str], prev_counts: Mapping[str, int], prev_since: Mapping[str, float],
              samples: dict[str, Any], cut: str, n_events: int) -> list[Finding]:
    t = ctx.thresholds.docker
    band = Band(warn=t.storm_warn, crit=t.storm_crit)
    win = f"{t.storm_window_minutes:g} min"
    out: list[Finding] = []
    for c in listed:
        cid, name = c["Id"], _name(c)
        doc = docs.get(cid, {})
        st = _state(doc)
        died = deaths.get(cid, 0)
        delta = 0
        if cid in prev_counts and "RestartCount" in doc:  # restarts the event stream may have missed
            delta = max(0, int(doc["RestartCount"] or 0) - int(prev_counts[cid]))
        count = max(died, delta)
        restarting = bool(st.get("Restarting")) or c.get("State") == "restarting"
        if restarting or (cid in prev_since and count > 0):  # still flapping: keep the first time seen
            first = [v for v in (prev_since.get(cid), _epoch(st.get("FinishedAt")) if restarting else None) if v]
            samples["restarting_since"][cid] = min([*first, ctx.now])
        if count == 0 and not restarting:
            continue
        stuck = (ctx.now - samples["restarting_since"][cid]) / 60 if restarting else 0.0
        status: Status = "ok"
        if count >= t.storm_crit or (restarting and stuck >= t.restarting_crit_minutes):
            status = "crit"
        elif count >= t.storm_warn:
            status = "warn"
        parts = []
        if count:
            parts.append(f"died {_count(count, 'time')} in the last {win}"
                         + (f" (RestartCount +{delta} since the last run)" if delta > died else ""))
        if restarting:
            parts.append(f"restarting for {stuck:.0f} min")
        summary = f"{name}: " + ", ".join(parts)
        hint = ""
        if status != "ok":
            hint = (f"`docker logs --tail 50 {name}` shows why it exits; its restart policy keeps relaunching it: "
                    f"fix the cause, or stop the loop with `docker update --restart=no {name}`")
        out.append(Finding("docker.restarts", name, status, float(count), "count", summary, hint, band))
    storms = any(f.status in ("warn", "crit") for f in out)
    if cut:
        out.append(Finding("docker.restarts", "", "info", None, "",
                           f"{cut} after {_count(n_events, 'event')}; restart counts may be low "
                           f"({_count(len(listed), 'container')})",
                           "dockerd ended or stalled `docker events`; if it keeps happening, see "
                           "`journalctl -u docker` (or Docker Desktop's logs) or restart Docker"))
    elif not storms:
        out.append(Finding("docker.restarts", "", "ok", 0.0, "count",
                           f"no restart storms ({_count(len(listed), 'container')})", band=band))
    return out


def _ooms(listed: list[dict[str, Any]], docs: dict[str, dict[str, Any]], ooms: Counter[str],
          window_minutes: float) -> list[Finding]:
    out = []
    for c in listed:
        st = _state(docs.get(c["Id"], {}))
        if not st.get("OOMKilled") and not ooms.get(c["Id"]):
            continue
        name = _name(c)
        if st.get("OOMKilled"):
            summary = f"{name}: killed for running out of memory (OOMKilled, exit {st.get('ExitCode', '?')})"
        else:
            summary = f"{name}: out of memory {_count(ooms[c['Id']], 'time')} in the last {window_minutes:g} min"
        out.append(Finding("docker.oom", name, "warn", None, "", summary,
                           "raise its memory limit (compose `mem_limit:` or `deploy.resources.limits.memory`, "
                           f"`docker update --memory 2g {name}`) or find what grows; without a limit the whole "
                           "WSL VM ran short: see `memory=` in .wslconfig"))
    return out


def _unhealthy(listed: list[dict[str, Any]], docs: dict[str, dict[str, Any]]) -> list[Finding]:
    out = []
    for c in listed:
        health = _state(docs.get(c["Id"], {})).get("Health")
        if not isinstance(health, dict) or health.get("Status") != "unhealthy":
            continue
        name = _name(c)
        log = [e for e in health.get("Log") or [] if isinstance(e, dict)]
        said = " ".join(str(log[-1].get("Output") or "").split()) if log else ""
        said = said if len(said) <= 100 else said[:99] + "…"
        streak = health.get("FailingStreak")
        summary = f"{name}: healthcheck failing" + (f" ({streak} in a row)" if streak else "")
        out.append(Finding("docker.unhealthy", name, "warn", None, "", summary + (f": {said}" if said else ""),
                           f"`docker inspect --format '{{{{json .State.Health}}}}' {name}` shows the last probes; "
                           "fix the service or its healthcheck"))
    return out


def _stale(ctx: CheckContext, listed: list[dict[str, Any]], docs: dict[str, dict[str, Any]],
           stale_days: float) -> list[Finding]:
    limit = stale_days * 86400
    names = []
    for c in listed:
        if c.get("State") != "exited":
            continue
        finished = _epoch(_state(docs.get(c["Id"], {})).get("FinishedAt"))
        if finished is not None:
            old = ctx.now - finished >= limit
        else:  # not inspected: the list view's age was clear enough
            age = _status_age(str(c.get("Status") or ""))
            old = age is not None and age[1] >= limit
        if old:
            names.append(_name(c))
    if not names:
        return []
    return [Finding("docker.stale", "", "info", float(len(names)), "count",
                    f"{_count(len(names), 'container')} exited more than {stale_days:g} days ago: {_some(names)}",
                    "`docker container prune` removes all stopped containers (`docker rm NAME` for one)")]


def _log_unbounded(doc: Mapping[str, Any]) -> bool:
    """json-file without max-size keeps every line forever; `local` rotates by default (20 MB x 5)."""
    lc = _dict(_dict(doc.get("HostConfig")).get("LogConfig"))
    return lc.get("Type") == "json-file" and _dict(lc.get("Config")).get("max-size") in (None, "", "-1")


def _dict(v: Any) -> Mapping[str, Any]:
    return v if isinstance(v, dict) else {}


def _logging(listed: list[dict[str, Any]], log_unbounded: Mapping[str, bool]) -> list[Finding]:
    names = [_name(c) for c in listed if log_unbounded.get(c["Id"])]
    if not names:
        return []
    unchecked = sum(c["Id"] not in log_unbounded for c in listed)
    later = f" ({unchecked} more not checked yet)" if unchecked else ""
    return [Finding("docker.logging", "", "warn", float(len(names)), "count",
                    f"{_count(len(names), 'container')} log to json-file without max-size{later}: {_some(names)}",
                    'their logs grow until the disk is full: set "log-opts": {"max-size": "10m", "max-file": "3"} '
                    "in /etc/docker/daemon.json (new containers), or `logging: {options: {max-size: 10m}}` per "
                    "compose service, then recreate them")]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _some(names: list[str]) -> str:
    shown = ", ".join(names[:NAMES_SHOWN])
    return shown + (f" and {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else "")
