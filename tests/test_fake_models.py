"""The fakes in tests/fake_models.py speak the wire formats well enough for the real clients: LiteLLM (OpenAI,
Ollama chat and generate, Anthropic; sync and async; streaming and not; usage reported) and the OpenAI SDK.

Everything talks to 127.0.0.1 only. LiteLLM is imported once, lazily, by the `litellm` fixture (~4 s).
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fake_models import (
    DEFAULT_REPLY,
    FakeAnthropicServer,
    FakeOllamaServer,
    FakeOpenAIServer,
    RecordedRequest,
    free_port,
    refused_url,
)

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello to the test suite."}]
REPLY_WORDS = len(DEFAULT_REPLY.split())


def make_key() -> str:
    """An API key built at run time (no secret-shaped literal in the repository)."""
    return "sk-test-" + secrets.token_hex(12)


@pytest.fixture(scope="session")
def litellm() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # else it fetches the price map at import
    os.environ.setdefault("LITELLM_LOG", "ERROR")
    import litellm as module

    module.telemetry = False
    module.suppress_debug_info = True  # no "Give Feedback / Get Help" banner on every exception
    return module


@pytest.fixture
def key() -> str:
    return make_key()


@pytest.fixture
def openai_server(key: str) -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(api_key=key) as server:
        yield server


@pytest.fixture
def ollama_server() -> Iterator[FakeOllamaServer]:
    with FakeOllamaServer() as server:
        yield server


@pytest.fixture
def anthropic_server() -> Iterator[FakeAnthropicServer]:
    with FakeAnthropicServer() as server:
        yield server


def _stream_text_and_usage(chunks: list[Any]) -> tuple[str, Any, list[str | None]]:
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    usages = [u for c in chunks if (u := getattr(c, "usage", None)) is not None]
    reasons = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    return text, (usages[-1] if usages else None), reasons


# ---------------------------------------------------------------------------------------------- the fakes alone


def test_openai_fake_controls(key: str) -> None:
    with FakeOpenAIServer(api_key=key) as server, httpx.Client(base_url=server.api_base) as http:
        auth = {"Authorization": f"Bearer {key}"}
        body = {"model": "gpt-x", "messages": MESSAGES, "max_tokens": 2}
        ok = http.post("/chat/completions", json=body, headers=auth).json()
        assert ok["model"] == "gpt-x" and ok["id"].startswith("chatcmpl-")
        assert ok["choices"][0]["message"]["content"] == "Hello from" and ok["choices"][0]["finish_reason"] == "length"
        assert ok["usage"]["completion_tokens"] == 2 and ok["usage"]["prompt_tokens"] > 8

        wrong = http.post("/chat/completions", json=body, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"

        server.fail_next(2, status=429)
        statuses = [http.post("/chat/completions", json=body, headers=auth).status_code for _ in range(3)]
        assert statuses == [429, 429, 200]
        assert server.failures_left == 0
        err = http.post("/chat/completions", json=body, headers=auth)
        assert err.status_code == 200

        models = http.get("/models", headers=auth).json()
        assert [m["id"] for m in models["data"]] == ["gpt-x", "gpt-4o"] and models["object"] == "list"

        assert server.count == 7
        assert server.counts == {"/v1/chat/completions": 6, "/v1/models": 1}
        first = server.requests[0]
        assert isinstance(first, RecordedRequest) and first.method == "POST" and first.body == body
        assert first.headers["Authorization"] == f"Bearer {key}"

        server.delay = 0.3
        started = time.monotonic()
        http.get("/models", headers=auth)
        assert time.monotonic() - started >= 0.3
        server.delay = 0

        port = server.port
        server.stop()
        with pytest.raises(httpx.ConnectError):
            http.get("/models", headers=auth)
        server.start()
        assert server.port == port and http.get("/models", headers=auth).status_code == 200


def test_openai_fake_streams_sse_with_a_usage_chunk() -> None:
    with FakeOpenAIServer() as server, httpx.Client(base_url=server.api_base) as http:
        body = {"model": "gpt-x", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
        with http.stream("POST", "/chat/completions", json=body) as resp:
            assert resp.headers["content-type"].startswith("text/event-stream")
            lines = [line for line in resp.iter_lines() if line]
        assert lines[-1] == "data: [DONE]"
        chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
        assert all(c["object"] == "chat.completion.chunk" and c["model"] == "gpt-x" for c in chunks)
        assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == DEFAULT_REPLY
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == REPLY_WORDS
        assert all(c["usage"] is None for c in chunks[:-1])


def test_ollama_fake_endpoints() -> None:
    with FakeOllamaServer(models=["llama3.2"]) as server, httpx.Client(base_url=server.url) as http:
        assert http.get("/api/version").json()["version"]
        assert [m["name"] for m in http.get("/api/tags").json()["models"]] == ["llama3.2:latest"]
        assert http.post("/api/show", json={"model": "llama3.2"}).json()["capabilities"]
        missing = http.post("/api/chat", json={"model": "mistral", "messages": MESSAGES, "stream": False})
        assert missing.status_code == 404 and "not found" in missing.json()["error"]

        # no `stream` field: Ollama streams NDJSON by default
        lines = http.post("/api/chat", json={"model": "llama3.2", "messages": MESSAGES}).text.splitlines()
        parts = [json.loads(line) for line in lines]
        assert "".join(p["message"]["content"] for p in parts) == DEFAULT_REPLY
        assert [p["done"] for p in parts][-2:] == [False, True]
        assert parts[-1]["eval_count"] == REPLY_WORDS and parts[-1]["prompt_eval_count"] > 8

        gen = http.post("/api/generate", json={"model": "llama3.2:latest", "prompt": "Hi", "stream": False,
                                               "options": {"num_predict": 2}}).json()
        assert gen["response"] == "Hello from" and gen["done_reason"] == "length" and gen["eval_count"] == 2

        server.fail_next(1, status=503, message="loading model")
        failed = http.post("/api/chat", json={"model": "llama3.2", "messages": MESSAGES, "stream": False})
        assert failed.status_code == 503 and failed.json() == {"error": "loading model"}
        assert server.counts["/api/chat"] == 3 and server.count == 7


def test_anthropic_fake_is_reused_with_the_same_controls() -> None:
    with FakeAnthropicServer() as server, httpx.Client(base_url=server.url) as http:
        body = {"model": "claude-haiku-4-5-20251001", "max_tokens": 64, "messages": MESSAGES[1:]}
        server.fail_next(1, status=529)
        overloaded = http.post("/v1/messages", json=body)
        assert overloaded.status_code == 529 and overloaded.json()["error"]["type"] == "overloaded_error"
        ok = http.post("/v1/messages", json=body).json()
        assert ok["content"][0]["text"] == DEFAULT_REPLY and ok["model"] == body["model"]
        assert server.counts == {"/v1/messages": 2} and server.message_requests() == [body, body]


def test_free_port_is_refused() -> None:
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{free_port()}/")
    with pytest.raises(httpx.ConnectError):
        httpx.get(refused_url() + "/api/version")


# ---------------------------------------------------------------------------------------------- LiteLLM, OpenAI


def test_litellm_openai_sync(litellm: Any, openai_server: FakeOpenAIServer, key: str) -> None:
    resp = litellm.completion(model="openai/gpt-x", api_base=openai_server.api_base, api_key=key, messages=MESSAGES)
    assert resp.choices[0].message.content == DEFAULT_REPLY and resp.model == "gpt-x"
    assert resp.usage.completion_tokens == REPLY_WORDS and resp.usage.prompt_tokens > 8
    assert resp.id.startswith("chatcmpl-")

    cut = litellm.completion(model="openai/gpt-x", api_base=openai_server.api_base, api_key=key, messages=MESSAGES,
                             max_tokens=3)
    assert cut.choices[0].finish_reason == "length" and cut.usage.completion_tokens == 3

    stream = litellm.completion(model="openai/gpt-x", api_base=openai_server.api_base, api_key=key,
                                messages=MESSAGES, stream=True, stream_options={"include_usage": True})
    text, usage, reasons = _stream_text_and_usage(list(stream))
    assert text == DEFAULT_REPLY and reasons == ["stop"]
    assert usage.completion_tokens == REPLY_WORDS and usage.prompt_tokens == resp.usage.prompt_tokens

    bodies = openai_server.bodies("/v1/chat/completions")
    assert [b["model"] for b in bodies] == ["gpt-x"] * 3 and bodies[1]["max_tokens"] == 3
    assert bodies[2]["stream"] is True and bodies[2]["stream_options"] == {"include_usage": True}
    assert {r.headers["Authorization"] for r in openai_server.requests} == {f"Bearer {key}"}


async def test_litellm_openai_async(litellm: Any, openai_server: FakeOpenAIServer, key: str) -> None:
    resp = await litellm.acompletion(model="openai/gpt-4o", api_base=openai_server.api_base, api_key=key,
                                     messages=MESSAGES)
    assert resp.choices[0].message.content == DEFAULT_REPLY and resp.usage.total_tokens > REPLY_WORDS
    assert litellm.completion_cost(resp) > 0  # the echoed model is priced

    stream = await litellm.acompletion(model="openai/gpt-4o", api_base=openai_server.api_base, api_key=key,
                                       messages=MESSAGES, stream=True, stream_options={"include_usage": True})
    text, usage, _ = _stream_text_and_usage([c async for c in stream])
    assert text == DEFAULT_REPLY and usage.completion_tokens == REPLY_WORDS
    assert openai_server.counts["/v1/chat/completions"] == 2


def test_litellm_openai_errors(litellm: Any, openai_server: FakeOpenAIServer, key: str) -> None:
    def call(api_base: str = openai_server.api_base) -> Any:
        # max_retries=0: the OpenAI SDK inside LiteLLM otherwise retries once itself (~0.4 s backoff)
        return litellm.completion(model="openai/gpt-x", api_base=api_base, api_key=key, messages=MESSAGES,
                                  max_retries=0)

    openai_server.fail_next(1, status=429)
    with pytest.raises(litellm.RateLimitError):
        call()
    openai_server.fail_next(1, status=500)
    with pytest.raises(litellm.InternalServerError):
        call()
    assert openai_server.count == 2
    assert call().choices[0].message.content == DEFAULT_REPLY
    # a refused connection surfaces from the OpenAI provider as InternalServerError (not APIConnectionError)
    with pytest.raises(litellm.InternalServerError):
        call(refused_url() + "/v1")


# ---------------------------------------------------------------------------------------------- LiteLLM, Ollama


def test_litellm_ollama_chat_sync(litellm: Any, ollama_server: FakeOllamaServer) -> None:
    resp = litellm.completion(model="ollama_chat/llama3.2", api_base=ollama_server.url, messages=MESSAGES)
    assert resp.choices[0].message.content == DEFAULT_REPLY
    assert resp.usage.completion_tokens == REPLY_WORDS and resp.usage.prompt_tokens > 8

    cut = litellm.completion(model="ollama_chat/llama3.2", api_base=ollama_server.url, messages=MESSAGES,
                             max_tokens=2)
    assert cut.choices[0].message.content == "Hello from" and cut.usage.completion_tokens == 2

    stream = litellm.completion(model="ollama_chat/llama3.2", api_base=ollama_server.url, messages=MESSAGES,
                                stream=True, stream_options={"include_usage": True})
    text, usage, _ = _stream_text_and_usage(list(stream))
    assert text == DEFAULT_REPLY and usage.completion_tokens == REPLY_WORDS
    assert usage.prompt_tokens == resp.usage.prompt_tokens

    bodies = ollama_server.bodies("/api/chat")
    assert [b["stream"] for b in bodies] == [False, False, True] and bodies[1]["options"]["num_predict"] == 2
    assert all(b["model"] == "llama3.2" for b in bodies)


async def test_litellm_ollama_chat_async(litellm: Any, ollama_server: FakeOllamaServer) -> None:
    resp = await litellm.acompletion(model="ollama_chat/llama3.2", api_base=ollama_server.url, messages=MESSAGES)
    assert resp.choices[0].message.content == DEFAULT_REPLY and resp.usage.completion_tokens == REPLY_WORDS
    stream = await litellm.acompletion(model="ollama_chat/llama3.2", api_base=ollama_server.url, messages=MESSAGES,
                                       stream=True, stream_options={"include_usage": True})
    text, usage, _ = _stream_text_and_usage([c async for c in stream])
    assert text == DEFAULT_REPLY and usage.completion_tokens == REPLY_WORDS
    assert ollama_server.counts["/api/chat"] == 2


def test_litellm_ollama_chat_reasoning(litellm: Any, ollama_server: FakeOllamaServer) -> None:
    resp = litellm.completion(model="ollama_chat/qwen3", api_base=ollama_server.url, messages=MESSAGES,
                              reasoning_effort="low")
    assert ollama_server.bodies("/api/chat")[0]["think"] is True
    assert resp.choices[0].message.reasoning_content == FakeOllamaServer.THINKING
    assert resp.choices[0].message.content == DEFAULT_REPLY


async def test_litellm_ollama_generate(litellm: Any, ollama_server: FakeOllamaServer) -> None:
    resp = litellm.completion(model="ollama/llama3.2", api_base=ollama_server.url, messages=MESSAGES)
    assert resp.choices[0].message.content == DEFAULT_REPLY and resp.usage.completion_tokens == REPLY_WORDS
    stream = await litellm.acompletion(model="ollama/llama3.2", api_base=ollama_server.url, messages=MESSAGES,
                                       stream=True, stream_options={"include_usage": True})
    text, usage, _ = _stream_text_and_usage([c async for c in stream])
    assert text == DEFAULT_REPLY and usage.completion_tokens == REPLY_WORDS and usage.prompt_tokens > 0
    assert ollama_server.counts["/api/generate"] == 2
    assert "Say hello" in ollama_server.bodies("/api/generate")[0]["prompt"]


def test_litellm_ollama_errors(litellm: Any, ollama_server: FakeOllamaServer) -> None:
    ollama_server.fail_next(1, status=500)
    with pytest.raises(litellm.InternalServerError):
        litellm.completion(model="ollama_chat/llama3.2", api_base=ollama_server.url, messages=MESSAGES)
    with pytest.raises(litellm.APIConnectionError):
        litellm.completion(model="ollama_chat/llama3.2", api_base=refused_url(), messages=MESSAGES)
    ollama_server.delay = 0.5
    with pytest.raises(litellm.Timeout):
        litellm.completion(model="ollama_chat/llama3.2", api_base=ollama_server.url, messages=MESSAGES, timeout=0.1)


# ---------------------------------------------------------------------------------------------- LiteLLM, Anthropic


def test_litellm_anthropic(litellm: Any, anthropic_server: FakeAnthropicServer, key: str) -> None:
    model = "anthropic/claude-haiku-4-5-20251001"
    resp = litellm.completion(model=model, api_base=anthropic_server.url, api_key=key, messages=MESSAGES)
    assert resp.choices[0].message.content == DEFAULT_REPLY and resp.usage.completion_tokens == 10
    assert litellm.completion_cost(resp) > 0
    stream = litellm.completion(model=model, api_base=anthropic_server.url, api_key=key, messages=MESSAGES,
                                stream=True, stream_options={"include_usage": True})
    text, usage, _ = _stream_text_and_usage(list(stream))
    assert text == DEFAULT_REPLY and usage.prompt_tokens == 10
    assert anthropic_server.counts["/v1/messages"] == 2
    assert {r.headers["x-api-key"] for r in anthropic_server.recorded()} == {key}


# ---------------------------------------------------------------------------------------------- the OpenAI SDK


def test_openai_sdk_sync(openai_server: FakeOpenAIServer, key: str) -> None:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=openai_server.api_base, api_key=key, max_retries=0)
    resp = client.chat.completions.create(model="gpt-x", messages=MESSAGES, max_tokens=4)
    assert resp.choices[0].message.content == "Hello from the fake" and resp.choices[0].finish_reason == "length"
    assert resp.usage is not None and resp.usage.completion_tokens == 4
    assert [m.id for m in client.models.list()] == ["gpt-x", "gpt-4o"]

    chunks = list(client.chat.completions.create(model="gpt-x", messages=MESSAGES, stream=True,
                                                 stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == DEFAULT_REPLY
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == REPLY_WORDS

    openai_server.fail_next(1, status=503)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="gpt-x", messages=MESSAGES)
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=openai_server.api_base, api_key="wrong", max_retries=0).models.list()


async def test_openai_sdk_async(openai_server: FakeOpenAIServer, key: str) -> None:
    openai = pytest.importorskip("openai")
    client = openai.AsyncOpenAI(base_url=openai_server.api_base, api_key=key, max_retries=0)
    resp = await client.chat.completions.create(model="gpt-x", messages=MESSAGES)
    assert resp.choices[0].message.content == DEFAULT_REPLY and resp.model == "gpt-x"
    stream = await client.chat.completions.create(model="gpt-x", messages=MESSAGES, stream=True,
                                                  stream_options={"include_usage": True})
    chunks = [c async for c in stream]
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == resp.usage.total_tokens
    await client.close()
