"""Fake model servers on 127.0.0.1 that speak the real wire formats, for driving the real LiteLLM (and SDKs) offline.

    with FakeOpenAIServer() as oa, FakeOllamaServer() as ol:
        litellm.completion(model="openai/gpt-x", api_base=oa.api_base, api_key=..., messages=...)
        litellm.completion(model="ollama_chat/llama3.2", api_base=ol.url, messages=...)
        oa.count, oa.counts["/v1/chat/completions"], oa.bodies("/v1/chat/completions")

* `FakeOpenAIServer` — OpenAI-compatible: `POST /v1/chat/completions` (JSON, or server-sent events with
  `stream: true`, ending in a usage chunk when `stream_options.include_usage`), `GET /v1/models`.
* `FakeOllamaServer` — Ollama: `POST /api/chat` and `POST /api/generate` (JSON, or NDJSON when streaming, which
  is Ollama's default when `stream` is absent), `POST /api/show`, `GET /api/tags`, `GET /api/version`. Unknown
  models get Ollama's 404 (`llama3.2` means `llama3.2:latest`).
* `FakeAnthropicServer` — `tests/fake_anthropic.FakeAnthropic` (the Messages API), with the same controls.

Every fake answers deterministically: the reply text (default `DEFAULT_REPLY`, or `reply=` a string or a function
of the request body) is cut into word tokens; the completion gets at most `max_tokens` (OpenAI `max_tokens` /
`max_completion_tokens`, Ollama `options.num_predict`) of them, with finish reason "length" when cut. Prompt
tokens are counted roughly from the message text (about four characters a token, plus a few per message).

Controls, the same on every fake and safe to use from the test thread while the server runs:
`fail_next(n, status=500, message="")` answers the next n model requests (POSTs) with that HTTP status and the
provider's own error body; `delay` (seconds, settable any time) holds every response back; `requests` /
`recorded()` hold each request as a RecordedRequest (method, path, parsed JSON body, headers), `bodies(path)` just
the bodies; `count` / `counts[path]` count them; `reset()` forgets them. `stop()` closes the port, so connections
are refused; on the OpenAI and Ollama fakes `start()` opens the same port again. `free_port()` / `refused_url()`
give a port / URL with nothing listening (a "server is down" endpoint). The OpenAI and Ollama fakes run aiohttp on
an event loop in a daemon thread of their own; the Anthropic one is FakeAnthropic's threaded stdlib server.
"""

from __future__ import annotations

import asyncio
import json
import math
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any, Self

from aiohttp import web

from tests.fake_anthropic import MODEL as ANTHROPIC_MODEL
from tests.fake_anthropic import FakeAnthropic

DEFAULT_REPLY = "Hello from the fake model. This answer is deterministic."
LOCALHOST = "127.0.0.1"

Reply = str | Callable[[dict[str, Any]], str]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (connections to it are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOCALHOST, 0))
        return int(s.getsockname()[1])


def refused_url() -> str:
    """A base URL where nothing listens, for "the server is down" cases."""
    return f"http://{LOCALHOST}:{free_port()}"


@dataclass
class RecordedRequest:
    """One request a fake received; `body` is the parsed JSON, the raw text when not JSON, or None."""

    method: str
    path: str
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------- token arithmetic


def text_tokens(text: str) -> int:
    """A rough token count: about four characters a token."""
    return math.ceil(len(text) / 4) if text else 0


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI/Anthropic content parts
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def prompt_tokens(messages: Iterable[Any], *extra: str) -> int:
    """Prompt tokens for a list of chat messages (plus any extra text, e.g. a system prompt): text plus 4 a message."""
    total = 3
    for m in messages:
        if isinstance(m, dict):
            total += 4 + text_tokens(_content_text(m.get("content")))
    return total + sum(text_tokens(e) for e in extra if e)


def completion_pieces(text: str, limit: int | None) -> tuple[list[str], str]:
    """The reply cut into tokens (words with their leading space), at most `limit` of them, and the finish reason."""
    words = text.split(" ")
    pieces = [w if i == 0 else " " + w for i, w in enumerate(words) if w or i == 0]
    if limit is not None and limit >= 0 and len(pieces) > limit:
        return pieces[:limit], "length"
    return pieces, "stop"


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# ---------------------------------------------------------------------------------------------- shared controls


class _Controls:
    """Failure injection, delay and request recording, shared by every fake."""

    def _init_controls(self, *, delay: float) -> None:
        self.delay = delay
        self.requests: list[Any] = []  # RecordedRequest, one per request received
        self._lock = threading.Lock()
        self._fail_left = 0
        self._fail_status = 500
        self._fail_message = ""

    def fail_next(self, n: int = 1, status: int = 500, message: str = "") -> None:
        """Answer the next `n` model requests (POSTs) with HTTP `status` and the provider's error body."""
        with self._lock:
            self._fail_left, self._fail_status, self._fail_message = n, status, message

    def _take_failure(self, method: str) -> tuple[int, str] | None:
        if method != "POST":
            return None
        with self._lock:
            if self._fail_left <= 0:
                return None
            self._fail_left -= 1
            return self._fail_status, self._fail_message or f"injected failure ({self._fail_status})"

    @property
    def failures_left(self) -> int:
        with self._lock:
            return self._fail_left

    def _record(self, req: Any) -> None:
        with self._lock:
            self.requests.append(req)

    @property
    def count(self) -> int:
        """Requests received, every path and method."""
        with self._lock:
            return len(self.requests)

    @property
    def counts(self) -> Counter[str]:
        """Requests received per path (without the query string)."""
        with self._lock:
            return Counter(r.path.split("?")[0] for r in self.requests)

    def recorded(self) -> list[RecordedRequest]:
        """`requests`, typed (FakeAnthropic declares its list with its own Request type, which has no headers)."""
        with self._lock:
            return [r for r in self.requests if isinstance(r, RecordedRequest)]

    def bodies(self, path: str) -> list[Any]:
        """The bodies of the requests received on `path`, in order."""
        with self._lock:
            return [r.body for r in self.requests if r.path.split("?")[0] == path]

    def reset(self) -> None:
        """Forget recorded requests and pending failures (the delay stays)."""
        with self._lock:
            self.requests.clear()
            self._fail_left = 0


# ---------------------------------------------------------------------------------------------- aiohttp base


class FakeModelServer(_Controls):
    """An aiohttp app on 127.0.0.1 in a daemon thread with its own event loop; a context manager (`with` starts it,
    and returns the server itself: `.url`, `.count`, `.counts`, `.requests`)."""

    name = "fake-model"

    def __init__(self, *, reply: Reply = DEFAULT_REPLY, delay: float = 0.0, port: int | None = None,
                 models: Iterable[str] = ()) -> None:
        self._init_controls(delay=delay)
        self.reply = reply
        self.models = list(models)
        self.port = port or free_port()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> Self:
        if self._thread is not None:
            return self
        ready = threading.Event()
        errors: list[BaseException] = []
        loop = asyncio.new_event_loop()

        async def boot() -> None:
            app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
            self._routes(app)
            runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.2)
            await runner.setup()
            site = web.TCPSite(runner, LOCALHOST, self.port, reuse_address=True)
            await site.start()
            self._runner = runner

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(boot())
            except BaseException as exc:  # report a failed bind to start() instead of dying silently
                errors.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            pending = asyncio.all_tasks(loop)  # handlers still sleeping out a `delay` when the port closed
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name=f"{self.name}:{self.port}", daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors:
            self._thread.join(5)
            self._thread = self._loop = None
            raise RuntimeError(f"{self.name}: could not listen on {self.url}") from errors[0]
        return self

    def stop(self) -> None:
        """Close the port (connections are refused afterwards); `start()` opens the same port again."""
        loop, thread, runner = self._loop, self._thread, self._runner
        if loop is None or thread is None:
            return
        if runner is not None:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._loop = self._thread = self._runner = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ plumbing

    def _routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def _error(self, status: int, message: str) -> web.Response:
        raise NotImplementedError

    def reply_text(self, body: dict[str, Any]) -> str:
        return self.reply(body) if callable(self.reply) else self.reply

    @web.middleware
    async def _middleware(self, request: web.Request,
                          handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        self._record(RecordedRequest(request.method, request.path_qs, body, dict(request.headers)))
        request["json"] = body
        if self.delay:
            await asyncio.sleep(self.delay)
        failure = self._take_failure(request.method)
        if failure is not None:
            return self._error(*failure)
        response: web.StreamResponse = await handler(request)
        return response


# ---------------------------------------------------------------------------------------------- OpenAI


class FakeOpenAIServer(FakeModelServer):
    """An OpenAI-compatible server: `api_base` (= url + "/v1") is what clients take as their base URL.

    `api_key`, when given, is required as `Authorization: Bearer …` (else OpenAI's 401); by default any key passes.
    """

    name = "fake-openai"

    def __init__(self, *, reply: Reply = DEFAULT_REPLY, delay: float = 0.0, port: int | None = None,
                 models: Iterable[str] = ("gpt-x", "gpt-4o"), api_key: str | None = None) -> None:
        super().__init__(reply=reply, delay=delay, port=port, models=models)
        self.api_key = api_key

    @property
    def api_base(self) -> str:
        return self.url + "/v1"

    def _routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)

    def _error(self, status: int, message: str) -> web.Response:
        kind = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error",
                429: "rate_limit_exceeded"}.get(status, "server_error")
        code = {401: "invalid_api_key", 404: "model_not_found", 429: "rate_limit_exceeded"}.get(status)
        return web.json_response({"error": {"message": message, "type": kind, "param": None, "code": code}},
                                 status=status, headers={"x-request-id": f"req_{uuid.uuid4().hex}"})

    def _authorized(self, request: web.Request) -> bool:
        return self.api_key is None or request.headers.get("Authorization") == f"Bearer {self.api_key}"

    async def _models(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._error(401, "Incorrect API key provided.")
        return web.json_response({"object": "list", "data": [
            {"id": m, "object": "model", "created": 1_700_000_000, "owned_by": "fake"} for m in self.models]})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return self._error(401, "Incorrect API key provided.")
        body = request["json"]
        if not isinstance(body, dict) or not body.get("model") or not isinstance(body.get("messages"), list):
            return self._error(400, "`model` and `messages` are required.")
        limit = _int_or_none(body.get("max_completion_tokens"))
        if limit is None:
            limit = _int_or_none(body.get("max_tokens"))
        pieces, finish = completion_pieces(self.reply_text(body), limit)
        usage = {"prompt_tokens": prompt_tokens(body["messages"]), "completion_tokens": len(pieces)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        ident, created, model = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time()), str(body["model"])
        headers = {"x-request-id": f"req_{uuid.uuid4().hex}"}
        if not body.get("stream"):
            return web.json_response({
                "id": ident, "object": "chat.completion", "created": created, "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(pieces), "refusal": None},
                             "logprobs": None, "finish_reason": finish}],
                "usage": usage}, headers=headers)

        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        resp = web.StreamResponse(headers={**headers, "Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache"})
        await resp.prepare(request)

        async def send(choices: list[dict[str, Any]], **extra: Any) -> None:
            chunk = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                     "system_fingerprint": "fp_fake", "choices": choices, **extra}
            if include_usage:
                chunk.setdefault("usage", None)
            await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())

        def choice(delta: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
            return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}

        await send([choice({"role": "assistant", "content": "", "refusal": None})])
        for piece in pieces:
            await send([choice({"content": piece})])
        await send([choice({}, finish)])
        if include_usage:
            await send([], usage=usage)
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp


# ---------------------------------------------------------------------------------------------- Ollama


def _tag(name: str) -> str:
    return name if ":" in name else name + ":latest"


class FakeOllamaServer(FakeModelServer):
    """An Ollama server (`url` is what clients take as OLLAMA_API_BASE). `models` are the pulled models; a request
    for another gets Ollama's 404. `think: true` adds a `thinking` field (as qwen3 / deepseek-r1 do)."""

    name = "fake-ollama"
    VERSION = "0.6.8"
    THINKING = "The user wants an answer; answer briefly."

    def __init__(self, *, reply: Reply = DEFAULT_REPLY, delay: float = 0.0, port: int | None = None,
                 models: Iterable[str] = ("llama3.2", "qwen3", "deepseek-r1")) -> None:
        super().__init__(reply=reply, delay=delay, port=port, models=[_tag(m) for m in models])

    def _routes(self, app: web.Application) -> None:
        app.router.add_post("/api/chat", self._chat)
        app.router.add_post("/api/generate", self._generate)
        app.router.add_post("/api/show", self._show)
        app.router.add_get("/api/tags", self._tags)
        app.router.add_get("/api/version", self._version)
        app.router.add_get("/", self._root)

    def _error(self, status: int, message: str) -> web.Response:
        return web.json_response({"error": message}, status=status)

    @staticmethod
    def _now() -> str:
        return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def _known(self, name: Any) -> bool:
        return isinstance(name, str) and _tag(name) in self.models

    async def _root(self, request: web.Request) -> web.Response:
        return web.Response(text="Ollama is running")

    async def _version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": self.VERSION})

    def _details(self, name: str) -> dict[str, Any]:
        family = "qwen3" if name.startswith("qwen") else "llama"
        return {"parent_model": "", "format": "gguf", "family": family, "families": [family],
                "parameter_size": "3.2B", "quantization_level": "Q4_K_M"}

    async def _tags(self, request: web.Request) -> web.Response:
        return web.json_response({"models": [
            {"name": m, "model": m, "modified_at": "2025-01-01T00:00:00.000000000Z", "size": 2_019_393_189,
             "digest": uuid.uuid5(uuid.NAMESPACE_DNS, m).hex * 2, "details": self._details(m)}
            for m in self.models]})

    async def _show(self, request: web.Request) -> web.Response:
        body = request["json"] if isinstance(request["json"], dict) else {}
        name = str(body.get("model") or body.get("name") or "")
        if not self._known(name):
            return self._error(404, f"model '{name}' not found")
        details = self._details(_tag(name))
        return web.json_response({
            "modelfile": f"FROM {_tag(name)}\n", "parameters": "stop \"<|eot_id|>\"",
            "template": "{{ if .Tools }}tools{{ end }}{{ .Prompt }}", "details": details,
            "model_info": {"general.architecture": details["family"], f"{details['family']}.context_length": 131072},
            "capabilities": ["completion", "tools"], "modified_at": "2025-01-01T00:00:00Z"})

    def _final(self, prompt_count: int, eval_count: int, reason: str) -> dict[str, Any]:
        return {"done": True, "done_reason": reason, "total_duration": 120_000_000, "load_duration": 2_000_000,
                "prompt_eval_count": prompt_count, "prompt_eval_duration": 20_000_000,
                "eval_count": eval_count, "eval_duration": 90_000_000}

    async def _answer(self, request: web.Request, kind: str) -> web.StreamResponse:
        body = request["json"]
        if not isinstance(body, dict):
            return self._error(400, "invalid request body")
        model = body.get("model")
        if not model:
            return self._error(400, "model is required")
        if not self._known(model):
            return self._error(404, f"model \"{model}\" not found, try pulling it first")
        options: dict[str, Any] = body["options"] if isinstance(body.get("options"), dict) else {}
        pieces, reason = completion_pieces(self.reply_text(body), _int_or_none(options.get("num_predict")))
        if kind == "chat":
            messages: list[Any] = body["messages"] if isinstance(body.get("messages"), list) else []
            count_in = prompt_tokens(messages)
        else:
            count_in = prompt_tokens([], str(body.get("prompt") or ""), str(body.get("system") or ""))
        thinking = self.THINKING if body.get("think") else None
        final = self._final(count_in, len(pieces), reason)

        def chunk(text: str, done: bool, think: str | None = None) -> dict[str, Any]:
            out: dict[str, Any] = {"model": model, "created_at": self._now()}
            if kind == "chat":
                message: dict[str, Any] = {"role": "assistant", "content": text}
                if think:
                    message["thinking"] = think
                out["message"] = message
            else:
                out["response"] = text
                if think:
                    out["thinking"] = think
            return {**out, **final} if done else {**out, "done": False}

        if not body.get("stream", True):  # Ollama streams unless told not to
            whole = chunk("".join(pieces), True, thinking)
            if kind == "generate":
                whole["context"] = list(range(1, count_in + len(pieces) + 1))[:64]
            return web.json_response(whole)

        resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await resp.prepare(request)
        if thinking:
            await resp.write((json.dumps(chunk("", False, thinking)) + "\n").encode())
        for piece in pieces:
            await resp.write((json.dumps(chunk(piece, False)) + "\n").encode())
        last = chunk("", True)
        if kind == "generate":
            last["context"] = list(range(1, count_in + len(pieces) + 1))[:64]
        await resp.write((json.dumps(last) + "\n").encode())
        await resp.write_eof()
        return resp

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._answer(request, "chat")

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        return await self._answer(request, "generate")


# ---------------------------------------------------------------------------------------------- Anthropic


class FakeAnthropicServer(FakeAnthropic, _Controls):
    """`tests.fake_anthropic.FakeAnthropic` (the Messages API on 127.0.0.1, stdlib, threaded) with the controls of
    the other fakes. A request without tools is answered with `reply` (default DEFAULT_REPLY); a request with tools
    runs FakeAnthropic's script (`commands`, default none: the final text at once). Responses name the model the
    request asked for; usage is FakeAnthropic's fixed 10 in / 10 out. The port is bound from construction on, so
    use it started; `stop()` closes the port for good (a stdlib server cannot be reopened)."""

    def __init__(self, commands: Iterable[str] = (), *, reply: str = DEFAULT_REPLY, delay: float = 0.0) -> None:
        super().__init__(list(commands), final_text=reply)
        self._init_controls(delay=delay)
        self.reply = reply
        self._started = False

    @property
    def api_base(self) -> str:
        return self.url

    def start(self) -> FakeAnthropicServer:
        if not self._started:
            self._started = True
            # serve_forever's default 0.5 s poll makes every shutdown wait that long; 0.05 s keeps tests quick
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                            name="fake-anthropic", daemon=True)
            super().__enter__()
        return self

    def stop(self) -> None:
        if self._started:
            self._started = False
            super().__exit__(None, None, None)

    def __enter__(self) -> FakeAnthropicServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _reply(self, body: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
        tools = [t.get("name") for t in body.get("tools") or [] if isinstance(t, dict)]
        if self.tool not in tools:
            return "end_turn", [{"type": "text", "text": self.reply}]
        return super()._reply(body)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self
        base: Any = super()._handler()

        class Handler(base):
            def _record(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body: Any = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                fake._record(RecordedRequest(self.command, self.path, body, dict(self.headers.items())))
                self.requested_model = body.get("model") if isinstance(body, dict) else None
                return body

            def _send(self, status: int, payload: bytes, content_type: str) -> None:
                model = getattr(self, "requested_model", None)
                if isinstance(model, str) and model:  # echo the model asked for, as the real API does
                    payload = payload.replace(f'"model": "{ANTHROPIC_MODEL}"'.encode(),
                                              f'"model": {json.dumps(model)}'.encode())
                super()._send(status, payload, content_type)

            def _intercepted(self) -> bool:
                if fake.delay:
                    time.sleep(fake.delay)
                failure = fake._take_failure(self.command)
                if failure is None:
                    return False
                self._record()
                status, message = failure
                kind = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
                        429: "rate_limit_error", 529: "overloaded_error"}.get(status, "api_error")
                self._json(status, {"type": "error", "error": {"type": kind, "message": message}})
                return True

            def do_POST(self) -> None:
                if not self._intercepted():
                    super().do_POST()

        return Handler
