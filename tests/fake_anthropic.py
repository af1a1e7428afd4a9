"""A scripted stand-in for the Anthropic Messages API on 127.0.0.1, for driving the real Claude Code CLI offline.

    with FakeAnthropic(["rm -rf /some/dir"]) as api:
        env["ANTHROPIC_BASE_URL"] = api.url
        ... run `claude -p ...` ...
        api.tool_results()  # what the "model" was told each call did

Each `POST /v1/messages` that offers tools gets, while fewer tool results than scripted commands are in the
conversation, a `tool_use` block calling `Bash` with the next command; once every command has its tool result it
gets a final text block. A request without tools (the CLI's side requests: titles, summaries, quota checks) gets
a short text. Streaming requests are answered with server-sent events (message_start, content_block_start,
content_block_delta, content_block_stop, message_delta, message_stop), others with one JSON message. Every
request is recorded (method, path, parsed JSON body) so a test can read what the CLI sent. Stdlib only.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "claude-fake-1"
FINAL_TEXT = "Done."
SIDE_TEXT = "Fake title"


@dataclass
class Request:
    method: str
    path: str
    body: Any  # parsed JSON, or the raw text when it is not JSON, or None


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content or [] if isinstance(b, dict)]


def result_text(block: dict[str, Any]) -> str:
    """The text of a tool_result block (its content is a string or a list of text blocks)."""
    content = block.get("content")
    if isinstance(content, str):
        return content
    return "\n".join(str(b.get("text", "")) for b in content or [] if isinstance(b, dict))


class FakeAnthropic:
    """A threaded HTTP server on 127.0.0.1 (a free port) scripting one Bash call per command, then a final text."""

    def __init__(self, commands: list[str], *, final_text: str = FINAL_TEXT, tool: str = "Bash") -> None:
        self.commands = list(commands)
        self.final_text = final_text
        self.tool = tool
        self.requests: list[Request] = []
        self.tool_use_ids: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-anthropic", daemon=True)

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def __enter__(self) -> FakeAnthropic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # ------------------------------------------------------------------ what the CLI sent

    def message_requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.body for r in self.requests
                    if r.method == "POST" and r.path.split("?")[0] == "/v1/messages" and isinstance(r.body, dict)]

    def tool_results(self) -> list[dict[str, Any]]:
        """Every distinct tool_result block the CLI sent back, in order (later requests repeat earlier ones)."""
        seen: dict[str, dict[str, Any]] = {}
        for body in self.message_requests():
            for message in body.get("messages") or []:
                if isinstance(message, dict) and message.get("role") == "user":
                    for block in _blocks(message):
                        if block.get("type") == "tool_result":
                            seen.setdefault(str(block.get("tool_use_id")), block)
        return list(seen.values())

    # ------------------------------------------------------------------ the script

    def _reply(self, body: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
        """(stop_reason, content blocks) for one Messages request."""
        tools = [t.get("name") for t in body.get("tools") or [] if isinstance(t, dict)]
        if self.tool not in tools:
            return "end_turn", [{"type": "text", "text": SIDE_TEXT}]
        done = sum(1 for m in body.get("messages") or [] if isinstance(m, dict) and m.get("role") == "user"
                   for b in _blocks(m) if b.get("type") == "tool_result")
        if done < len(self.commands):
            tool_id = f"toolu_{uuid.uuid4().hex[:24]}"
            with self._lock:
                self.tool_use_ids.append(tool_id)
            call = {"command": self.commands[done], "description": f"scripted step {done + 1}"}
            return "tool_use", [{"type": "tool_use", "id": tool_id, "name": self.tool, "input": call}]
        return "end_turn", [{"type": "text", "text": self.final_text}]

    @staticmethod
    def _message(stop_reason: str, content: list[dict[str, Any]]) -> dict[str, Any]:
        return {"id": f"msg_{uuid.uuid4().hex[:24]}", "type": "message", "role": "assistant", "model": MODEL,
                "content": content, "stop_reason": stop_reason, "stop_sequence": None,
                "usage": {"input_tokens": 10, "output_tokens": 10, "cache_creation_input_tokens": 0,
                          "cache_read_input_tokens": 0}}

    @classmethod
    def _events(cls, stop_reason: str, content: list[dict[str, Any]]) -> bytes:
        start = cls._message("", [])
        start.update(stop_reason=None, usage={**start["usage"], "output_tokens": 1})
        events: list[tuple[str, dict[str, Any]]] = [("message_start", {"type": "message_start", "message": start})]
        for i, block in enumerate(content):
            if block["type"] == "tool_use":
                head = {**block, "input": {}}
                delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
            else:
                head = {"type": "text", "text": ""}
                delta = {"type": "text_delta", "text": block["text"]}
            events += [("content_block_start", {"type": "content_block_start", "index": i, "content_block": head}),
                       ("content_block_delta", {"type": "content_block_delta", "index": i, "delta": delta}),
                       ("content_block_stop", {"type": "content_block_stop", "index": i})]
        events += [("message_delta", {"type": "message_delta",
                                      "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                                      "usage": {"output_tokens": 10}}),
                   ("message_stop", {"type": "message_stop"})]
        return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events).encode()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
                pass

            def _record(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body: Any = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                with fake._lock:
                    fake.requests.append(Request(self.command, self.path, body))
                return body

            def _send(self, status: int, payload: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("request-id", f"req_{uuid.uuid4().hex[:24]}")
                self.end_headers()
                self.wfile.write(payload)

            def _json(self, status: int, data: dict[str, Any]) -> None:
                self._send(status, json.dumps(data).encode(), "application/json")

            def do_POST(self) -> None:
                body = self._record()
                path = self.path.split("?")[0]
                if path == "/v1/messages/count_tokens":
                    self._json(200, {"input_tokens": 10})
                    return
                if path != "/v1/messages" or not isinstance(body, dict):
                    self._json(404, {"type": "error", "error": {"type": "not_found_error", "message": path}})
                    return
                stop_reason, content = fake._reply(body)
                if body.get("stream"):
                    self._send(200, fake._events(stop_reason, content), "text/event-stream")
                else:
                    self._json(200, fake._message(stop_reason, content))

            def do_GET(self) -> None:
                self._record()
                self._json(404, {"type": "error", "error": {"type": "not_found_error", "message": self.path}})

        return Handler
