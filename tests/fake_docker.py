"""A fake Docker Engine API on a Unix socket, for driving the real `docker` SDK offline.

    c = container("web", restart_count=4)
    with FakeDocker([c], events=[die(c, at=now - 30)], now=now) as engine:
        api = docker.APIClient(base_url=engine.base_url, version="auto")
        ... api.containers(all=True), api.inspect_container(c["Id"]) ...
        engine.counts["inspect"]  # how often each endpoint was asked

It speaks the Engine API's HTTP over AF_UNIX (HTTP/1.1 keep-alive, like dockerd): `GET /_ping`, `GET /version`,
`GET /info`, `GET /containers/json`, `GET /containers/{id}/json` and `GET /events`, each with or without a
`/v1.NN` prefix. Documents have the shapes the Engine API documents: `container()` builds the inspect document
(State{Status,Running,Restarting,OOMKilled,ExitCode,StartedAt,FinishedAt,Health}, RestartCount, Name,
HostConfig.LogConfig …) and the list view (Id, Names, State, Status "Up 3 hours (healthy)", Created …) is derived
from it at request time, against the fake's clock `now`, the way dockerd derives it. `/events` filters by
since/until and by type/event/container, then streams newline-delimited JSON with chunked encoding; it can hang up
after N events (`hang_up_after`) or stall without closing (`stall`). Stdlib only.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import socketserver
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

API_VERSION = "1.47"
ENGINE_VERSION = "27.3.1"
ZERO_TIME = "0001-01-01T00:00:00Z"
BOUNDED_LOGS = {"Type": "json-file", "Config": {"max-file": "3", "max-size": "10m"}}
_VERSIONED = re.compile(r"^/v\d+(?:\.\d+)?(/.*)$")
_INSPECT = re.compile(r"^/containers/([^/]+)/json$")


def rfc3339(epoch: float | None) -> str:
    """Engine timestamps: RFC 3339 with nanoseconds, UTC; the zero time for "never"."""
    if epoch is None:
        return ZERO_TIME
    dt = datetime.fromtimestamp(epoch, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}123Z"


def _epoch(stamp: str) -> float | None:
    if not stamp or stamp.startswith("0001-"):
        return None
    return datetime.fromisoformat(stamp[:26].rstrip("Z") + "+00:00").timestamp()


def container(name: str, state: str = "running", *, restart_count: int = 0, oom: bool = False,
              health: str | None = None, health_output: str = "", failing_streak: int = 0,
              started_at: float | None = None, finished_at: float | None = None, exit_code: int | None = None,
              log_config: dict[str, Any] | None = None, now: float | None = None,
              restart_policy: str = "unless-stopped") -> dict[str, Any]:
    """An inspect document (GET /containers/{id}/json) for `name`, in `state`.

    Times are epoch seconds; by default a container started three days before `now` (default: the wall clock) and
    an exited one finished an hour ago. `health` is "healthy", "unhealthy" or "starting" (None: no healthcheck).
    `log_config` is HostConfig.LogConfig; the default is json-file with max-size, so a crowd of containers is quiet.
    """
    now = time.time() if now is None else now
    started = now - 3 * 86400 if started_at is None else started_at
    running = state in ("running", "restarting", "paused")
    if finished_at is None and state in ("exited", "dead", "restarting"):
        finished_at = now - (3600 if state != "restarting" else 5)
    if exit_code is None:
        exit_code = 137 if oom else (1 if state in ("exited", "restarting", "dead") else 0)
    cid = hashlib.sha256(name.encode()).hexdigest()
    doc_state: dict[str, Any] = {
        "Status": state,
        "Running": running,
        "Paused": state == "paused",
        "Restarting": state == "restarting",
        "OOMKilled": oom,
        "Dead": state == "dead",
        "Pid": 4242 if running and state != "restarting" else 0,
        "ExitCode": 0 if state == "running" else exit_code,
        "Error": "",
        "StartedAt": rfc3339(None if state == "created" else started),
        "FinishedAt": rfc3339(finished_at),
    }
    if health is not None:
        out = health_output or ("connection refused" if health == "unhealthy" else "ok")
        code = 1 if health == "unhealthy" else 0
        doc_state["Health"] = {
            "Status": health,
            "FailingStreak": failing_streak or (3 if health == "unhealthy" else 0),
            "Log": [{"Start": rfc3339(now - 30 + i), "End": rfc3339(now - 29.5 + i), "ExitCode": code,
                     "Output": out} for i in range(2)],
        }
    return {
        "Id": cid,
        "Created": rfc3339(started - 60),
        "Path": "/entrypoint.sh",
        "Args": [],
        "State": doc_state,
        "Image": "sha256:" + hashlib.sha256(b"image" + name.encode()).hexdigest(),
        "Name": "/" + name,
        "RestartCount": restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "HostConfig": {
            "LogConfig": dict(BOUNDED_LOGS if log_config is None else log_config),
            "RestartPolicy": {"Name": restart_policy, "MaximumRetryCount": 0},
            "NetworkMode": "bridge",
            "Memory": 0,
        },
        "Config": {"Hostname": cid[:12], "Image": f"example/{name}:latest", "Labels": {}},
        "NetworkSettings": {"Networks": {}},
        "Mounts": [],
    }


def die(c: dict[str, Any], at: float, exit_code: int = 1) -> dict[str, Any]:
    """A `die` event (GET /events) for container `c` at epoch `at`."""
    return _event(c, "die", at, {"exitCode": str(exit_code)})


def oom(c: dict[str, Any], at: float) -> dict[str, Any]:
    """An `oom` event for container `c` at epoch `at`."""
    return _event(c, "oom", at, {})


def _event(c: dict[str, Any], action: str, at: float, extra: dict[str, str]) -> dict[str, Any]:
    image = c["Config"]["Image"]
    attrs = {"image": image, "name": c["Name"].lstrip("/"), **extra}
    return {"status": action, "id": c["Id"], "from": image, "Type": "container", "Action": action,
            "Actor": {"ID": c["Id"], "Attributes": attrs}, "scope": "local",
            "time": int(at), "timeNano": int(at * 1e9)}


def human_duration(seconds: float) -> str:
    """go-units HumanDuration, which dockerd uses for the list view's Status ("Up 3 hours")."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def status_text(doc: dict[str, Any], now: float) -> str:
    """The list view's Status, as dockerd's State.String() writes it."""
    st = doc["State"]
    started, finished = _epoch(st["StartedAt"]), _epoch(st["FinishedAt"])
    if st["Running"]:
        up = human_duration(now - (started or now))
        if st["Paused"]:
            return f"Up {up} (Paused)"
        if st["Restarting"]:
            return f"Restarting ({st['ExitCode']}) {human_duration(now - (finished or now))} ago"
        health = st.get("Health")
        if health:
            label = "health: starting" if health["Status"] == "starting" else health["Status"]
            return f"Up {up} ({label})"
        return f"Up {up}"
    if st["Dead"]:
        return "Dead"
    if started is None:
        return "Created"
    return f"Exited ({st['ExitCode']}) {human_duration(now - (finished or now))} ago"


def list_view(doc: dict[str, Any], now: float) -> dict[str, Any]:
    """One entry of GET /containers/json, derived from the inspect document."""
    return {
        "Id": doc["Id"],
        "Names": [doc["Name"]],
        "Image": doc["Config"]["Image"],
        "ImageID": doc["Image"],
        "Command": doc["Path"],
        "Created": int(_epoch(doc["Created"]) or 0),
        "Ports": [],
        "Labels": doc["Config"]["Labels"],
        "State": doc["State"]["Status"],
        "Status": status_text(doc, now),
        "HostConfig": {"NetworkMode": doc["HostConfig"]["NetworkMode"]},
        "NetworkSettings": doc["NetworkSettings"],
        "Mounts": doc["Mounts"],
    }


class _UnixHTTPServer(ThreadingHTTPServer):
    address_family = socket.AF_UNIX
    daemon_threads = True

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)  # HTTPServer's own wants a (host, port) address
        self.server_name, self.server_port = "localhost", 0


class FakeDocker:
    """dockerd's HTTP API on a Unix socket in a short temp dir (or at `path`), served from a thread."""

    def __init__(self, containers: list[dict[str, Any]] | None = None, events: list[dict[str, Any]] | None = None,
                 *, now: float | None = None, path: Path | None = None, hang_up_after: int | None = None,
                 stall: bool = False, data_root: str = "/var/lib/docker") -> None:
        self.containers = list(containers or [])
        self.events = list(events or [])
        self.now = now  # None: the wall clock
        self.hang_up_after = hang_up_after
        self.stall = stall
        self.data_root = data_root
        self.counts: Counter[str] = Counter()  # per endpoint: ping, version, info, list, inspect, events
        self.requests: list[str] = []  # every request line's target, as sent
        self.events_sent = 0
        self._release = threading.Event()  # lets a stalled stream go when the fake stops
        self._lock = threading.Lock()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if path is None:  # sun_path holds 108 bytes: pytest's tmp_path can be longer
            self._tmp = tempfile.TemporaryDirectory(prefix="fdk-", dir="/tmp")
            path = Path(self._tmp.name) / "docker.sock"
        self.socket_path = path
        self._server = _UnixHTTPServer(str(path), self._handler())  # type: ignore[arg-type]  # AF_UNIX: a path
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), name="fake-docker",
                                        daemon=True)  # a short poll: shutdown() waits up to one poll interval

    @property
    def base_url(self) -> str:
        return f"unix://{self.socket_path}"

    def clock(self) -> float:
        return time.time() if self.now is None else self.now

    def __enter__(self) -> FakeDocker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self.socket_path.unlink(missing_ok=True)
        if self._tmp is not None:
            self._tmp.cleanup()

    # ------------------------------------------------------------------ answers

    def _find(self, ref: str) -> dict[str, Any] | None:
        for c in self.containers:
            if c["Id"] == ref or c["Id"].startswith(ref) or c["Name"] == "/" + ref.lstrip("/"):
                return c
        return None

    def _list(self, q: dict[str, list[str]]) -> list[dict[str, Any]]:
        show_all = q.get("all", ["0"])[0] not in ("0", "false", "")
        filters = json.loads(q.get("filters", ["{}"])[0] or "{}")
        out = []
        for c in self.containers:
            st = c["State"]["Status"]
            if not show_all and st not in ("running", "restarting", "paused"):
                continue
            if "status" in filters and st not in filters["status"]:
                continue
            if "id" in filters and not any(c["Id"].startswith(i) for i in filters["id"]):
                continue
            out.append(list_view(c, self.clock()))
        return out[::-1]  # newest first, like dockerd

    def _matching_events(self, q: dict[str, list[str]]) -> list[dict[str, Any]]:
        since = float(q.get("since", ["0"])[0] or 0)
        until = float(q.get("until", ["inf"])[0] or "inf")
        filters = json.loads(q.get("filters", ["{}"])[0] or "{}")
        out = []
        for e in sorted(self.events, key=lambda e: e["timeNano"]):
            t = e["timeNano"] / 1e9
            if t < since or t > until:
                continue
            if "type" in filters and e["Type"] not in filters["type"]:
                continue
            if "event" in filters and e["Action"] not in filters["event"]:
                continue
            if "container" in filters:
                who = {e["Actor"]["ID"], e["Actor"]["Attributes"].get("name")}
                if not any(ref in who or e["Actor"]["ID"].startswith(ref) for ref in filters["container"]):
                    continue
            out.append(e)
        return out

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's connection pool expects
            server_version = f"Docker/{ENGINE_VERSION} (linux)"

            def log_message(self, format: str, *args: Any) -> None:  # AF_UNIX peers have no address to log
                pass

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                m = _VERSIONED.match(url.path)
                path = m.group(1) if m else url.path
                q = parse_qs(url.query)
                with fake._lock:
                    fake.requests.append(self.path)
                if path == "/_ping":
                    fake.counts["ping"] += 1
                    self._send(200, b"OK", "text/plain; charset=utf-8")
                elif path == "/version":
                    fake.counts["version"] += 1
                    self._json(200, {"Version": ENGINE_VERSION, "ApiVersion": API_VERSION, "MinAPIVersion": "1.24",
                                     "Os": "linux", "Arch": "amd64", "GoVersion": "go1.22.7", "GitCommit": "ce12230",
                                     "KernelVersion": "5.15.167.4-microsoft-standard-WSL2"})
                elif path == "/info":
                    fake.counts["info"] += 1
                    running = sum(c["State"]["Status"] == "running" for c in fake.containers)
                    self._json(200, {"ID": "FAKE:DOCKER", "Containers": len(fake.containers),
                                     "ContainersRunning": running, "DockerRootDir": fake.data_root,
                                     "ServerVersion": ENGINE_VERSION, "Driver": "overlay2",
                                     "LoggingDriver": "json-file", "OperatingSystem": "Ubuntu 24.04.1 LTS",
                                     "NCPU": 8, "MemTotal": 16 * 2**30})
                elif path == "/containers/json":
                    fake.counts["list"] += 1
                    self._json(200, fake._list(q))
                elif (m := _INSPECT.match(path)) is not None:
                    fake.counts["inspect"] += 1
                    doc = fake._find(m.group(1))
                    if doc is None:
                        self._json(404, {"message": f"No such container: {m.group(1)}"})
                    else:
                        self._json(200, doc)
                elif path == "/events":
                    fake.counts["events"] += 1
                    self._stream(fake._matching_events(q))
                else:
                    self._json(404, {"message": "page not found"})

            def _json(self, code: int, body: Any) -> None:
                self._send(code, json.dumps(body).encode(), "application/json")

            def _send(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Api-Version", API_VERSION)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _stream(self, events: list[dict[str, Any]]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Api-Version", API_VERSION)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for i, e in enumerate(events):
                    if fake.hang_up_after is not None and i >= fake.hang_up_after:
                        break
                    data = json.dumps(e).encode() + b"\n"
                    self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                    self.wfile.flush()
                    with fake._lock:
                        fake.events_sent += 1
                if fake.stall:
                    fake._release.wait(60)  # neither more data nor a close, until the fake stops
                    self.close_connection = True
                elif fake.hang_up_after is not None and fake.hang_up_after < len(events):
                    self.close_connection = True  # no terminating chunk: the peer sees the stream cut short
                else:
                    self.wfile.write(b"0\r\n\r\n")

        return Handler
