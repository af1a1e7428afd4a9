"""The REAL LiteLLM proxy (`aistack gateway serve`'s command line and environment) with our callback, in front of
fake model servers on 127.0.0.1: calls through it are budgeted before they are sent and land in our ledger.

One proxy serves the whole module (it takes ~15 s to start). Ledger rows are written by the proxy's logging task
after the response, so reads wait for them.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine, text

from services.gateway import budgets, proxy
from services.gateway.service import DEFAULT_MAX_TOKENS
from services.settings import Settings, load_settings
from services.store.db import make_engine, upgrade
from tests.fake_anthropic import FINAL_TEXT, SIDE_TEXT, FakeAnthropic
from tests.fake_models import FakeOpenAIServer, free_port, refused_url

pytestmark = pytest.mark.skipif(not proxy.installed(), reason="the proxy extra is not installed (./dev test does it)")

GPT_IN, GPT_OUT = Decimal("0.0000025"), Decimal("0.00001")  # gpt-4o in LiteLLM's bundled price table
SONNET_IN, SONNET_OUT = Decimal("0.000003"), Decimal("0.000015")  # claude-sonnet-4-5
START_TIMEOUT = 90.0


def fake_key(kind: str) -> str:
    return "-".join(["sk", kind, "x" * 24])


@dataclass
class Proxy:
    url: str
    key: str
    engine: Engine
    settings: Settings
    openai: FakeOpenAIServer
    anthropic: FakeAnthropic
    log: Path

    def post(self, path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> tuple[int, Any]:
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), method="POST", headers={
            "Authorization": f"Bearer {self.key}", "Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def chat(self, model: str, tags: list[str] | None = None, max_tokens: int = 50,
             headers: dict[str, str] | None = None) -> tuple[int, Any]:
        body: dict[str, Any] = {"model": model, "max_tokens": max_tokens,
                                "messages": [{"role": "user", "content": "Say hello."}]}
        if tags is not None:
            body["metadata"] = {"tags": tags}
        return self.post("/v1/chat/completions", body, headers)

    def rows(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(text("SELECT * FROM gateway_ledger ORDER BY id"))]

    def wait_rows(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The ledger once it holds at least n rows (the proxy writes them just after answering)."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.rows()
            if len(rows) >= n or time.monotonic() > deadline:
                return rows
            time.sleep(0.05)


def _config(path: Path, openai: FakeOpenAIServer, anthropic: FakeAnthropic) -> Path:
    anthropic_params = {"api_key": fake_key("ant"), "api_base": anthropic.url}
    path.write_text(yaml.safe_dump({
        "model_list": [
            {"model_name": "gpt", "litellm_params": {"model": "openai/gpt-4o", "api_base": openai.api_base,
                                                     "api_key": fake_key("test")}},
            {"model_name": "mystery", "litellm_params": {"model": "openai/mystery-model-x",
                                                         "api_base": openai.api_base, "api_key": fake_key("test")}},
            {"model_name": "local", "litellm_params": {"model": "ollama_chat/llama3.2", "api_base": refused_url(),
                                                       "input_cost_per_token": 0, "output_cost_per_token": 0}},
            {"model_name": "claude", "litellm_params": {"model": "anthropic/claude-sonnet-4-5-20250929",
                                                        **anthropic_params}},
            {"model_name": "claude-fast", "litellm_params": {"model": "anthropic/claude-haiku-4-5-20251001",
                                                             **anthropic_params}},
        ],
        "router_settings": {"fallbacks": [{"local": ["gpt"]}], "num_retries": 0, "disable_cooldowns": True,
                            "timeout": 20,
                            "model_group_alias": {"claude-sonnet-4-5-20250929": "claude",
                                                  "claude-haiku-4-5-20251001": "claude-fast"}},
        "litellm_settings": {"drop_params": True, "callbacks": [proxy.CALLBACK]},
        "general_settings": {"master_key": "os.environ/LITELLM_MASTER_KEY"},
    }))
    return path


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    home = tmp_path_factory.mktemp("proxy-home")
    os.environ.pop("LITELLM_MASTER_KEY", None)
    settings = load_settings(env_file=None, aistack_home=home, tz="UTC",
                             database_url=f"sqlite:///{home / 'aistack.db'}")
    upgrade(settings.db_url)
    engine = make_engine(settings.db_url)
    with FakeOpenAIServer() as openai, FakeAnthropic([]) as anthropic:
        config = _config(home / "litellm.yaml", openai, anthropic)
        port = free_port()
        argv, env, where = proxy.prepare(settings, config, "127.0.0.1", port)
        assert where == str(home / proxy.KEY_FILE)  # no LITELLM_MASTER_KEY: one generated and kept, mode 0600
        assert (home / proxy.KEY_FILE).stat().st_mode & 0o077 == 0
        assert "DATABASE_URL" not in env and env["AISTACK_DATABASE_URL"] == settings.db_url
        log = home / "proxy.log"
        with log.open("w") as out:
            proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_up(url, proc, log)
            yield Proxy(url=url, key=env["LITELLM_MASTER_KEY"], engine=engine, settings=settings, openai=openai,
                        anthropic=anthropic, log=log)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
            engine.dispose()


def _wait_up(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the proxy exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url + "/health/liveliness", timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"the proxy did not answer within {START_TIMEOUT} s:\n{log.read_text()[-4000:]}")


@pytest.fixture(autouse=True)
def clean(gw: Proxy) -> Iterator[None]:
    yield
    for b in budgets.list_budgets(gw.engine):
        budgets.remove_budget(gw.engine, b.client, b.period, b.tag)
    gw.openai.reset()


def test_a_call_through_the_proxy_is_priced_and_lands_in_our_ledger(gw: Proxy) -> None:
    before = len(gw.rows())
    status, body = gw.chat("gpt", ["client:acme", "triage"])
    assert status == 200, body
    assert body["choices"][0]["message"]["content"]
    row = gw.wait_rows(before + 1)[-1]
    assert (row["client"], row["caller"], row["model_asked"], row["model_used"], row["status"]) == (
        "acme", "proxy", "gpt", "openai/gpt-4o", "ok")
    assert json.loads(row["tags"]) == ["triage"]
    usage = body["usage"]
    assert (row["input_tokens"], row["output_tokens"]) == (usage["prompt_tokens"], usage["completion_tokens"])
    expected = usage["prompt_tokens"] * GPT_IN + usage["completion_tokens"] * GPT_OUT
    assert Decimal(row["cost_nanos"]) / 10**9 == expected
    assert row["request_id"] == body["id"]


def test_a_budget_refuses_before_anything_reaches_the_model(gw: Proxy) -> None:
    budgets.set_budget(gw.engine, "tight", Decimal("0.001"), "month")
    sent = gw.openai.count
    before = len(gw.rows())
    # worst case: 1,000 output tokens at $10/M = $0.01 > $0.001
    status, body = gw.chat("gpt", ["client:tight"], max_tokens=1000)
    assert status == 429, body
    message = json.dumps(body)
    assert "tight" in message and "would be exceeded" in message and "resets" in message
    assert gw.openai.count == sent  # nothing went upstream
    row = gw.wait_rows(before + 1)[-1]
    assert (row["client"], row["status"], row["caller"]) == ("tight", "refused", "proxy")
    # a call that fits is reserved, answered and settled: nothing stays held
    status, _ = gw.chat("gpt", ["client:tight"], max_tokens=20)
    assert status == 200
    gw.wait_rows(before + 2)
    (st,) = [s for s in budgets.status(gw.engine) if s.budget.client == "tight"]
    assert st.reserved == 0 and 0 < st.spent < Decimal("0.001")


def test_fallback_through_the_proxy_records_both_models(gw: Proxy) -> None:
    before = len(gw.rows())
    status, body = gw.chat("local", ["client:acme"])
    assert status == 200, body
    rows = gw.wait_rows(before + 1)
    time.sleep(0.3)  # the failed local attempt must not add a row of its own
    rows = gw.rows()
    assert len(rows) == before + 1
    assert (rows[-1]["model_asked"], rows[-1]["model_used"], rows[-1]["status"]) == ("local", "openai/gpt-4o", "ok")


def test_a_failed_call_is_a_ledger_row_and_releases_its_reservation(gw: Proxy) -> None:
    budgets.set_budget(gw.engine, "flaky", Decimal("5"), "day")
    gw.openai.fail_next(1, status=500, message="upstream exploded")
    before = len(gw.rows())
    status, _ = gw.chat("gpt", ["client:flaky"])
    assert status >= 500
    row = gw.wait_rows(before + 1)[-1]
    assert (row["client"], row["status"], row["cost_nanos"]) == ("flaky", "error", 0)
    assert "exploded" in (row["error"] or "")
    (st,) = [s for s in budgets.status(gw.engine) if s.budget.client == "flaky"]
    assert (st.spent, st.reserved) == (0, 0)


def test_a_call_without_max_tokens_is_capped_at_the_reserved_limit(gw: Proxy) -> None:
    body = {"model": "gpt", "messages": [{"role": "user", "content": "Say hello."}],
            "metadata": {"tags": ["client:acme"]}}
    before = len(gw.rows())
    assert gw.post("/v1/chat/completions", body)[0] == 200
    sent = gw.openai.bodies("/v1/chat/completions")[-1]
    assert sent["max_tokens"] == DEFAULT_MAX_TOKENS  # the worst case reserved is the worst case possible
    gw.wait_rows(before + 1)
    status, err = gw.post("/v1/chat/completions", {**body, "max_tokens": "lots"})
    assert status == 400 and "max_tokens must be a positive integer" in json.dumps(err)


def test_an_unpriced_model_is_booked_as_unknown_not_free(gw: Proxy) -> None:
    before = len(gw.rows())
    assert gw.chat("mystery", ["client:acme"])[0] == 200
    row = gw.wait_rows(before + 1)[-1]
    assert (row["model_asked"], row["status"], row["cost_nanos"]) == ("mystery", "ok", None), str(row)
    budgets.set_budget(gw.engine, "acme", Decimal("5"), "month")
    status, body = gw.chat("mystery", ["client:acme"])  # a budgeted client cannot reserve an unknown worst case
    assert status == 400 and "no price" in json.dumps(body)


def test_client_from_the_tags_header_and_a_default_for_untagged_calls(gw: Proxy) -> None:
    before = len(gw.rows())
    assert gw.chat("gpt", headers={"x-litellm-tags": "client:globex,nightly"})[0] == 200
    assert gw.chat("gpt")[0] == 200
    rows = gw.wait_rows(before + 2)[-2:]
    assert {(r["client"], r["tags"]) for r in rows} == {("globex", '["nightly"]'), ("internal", "[]")}


def test_anthropic_messages_streamed_through_the_proxy_are_budgeted_and_logged(gw: Proxy) -> None:
    import anthropic

    budgets.set_budget(gw.engine, "acme", Decimal("1"), "month")
    before = len(gw.rows())
    client = anthropic.Anthropic(base_url=gw.url, api_key=gw.key,
                                 default_headers={"x-litellm-tags": "client:acme,claude-code"})
    with client.messages.stream(model="claude-sonnet-4-5-20250929", max_tokens=100,
                                messages=[{"role": "user", "content": "Name this chat."}]) as stream:
        reply = stream.get_final_message()
    assert reply.content[0].text == SIDE_TEXT  # type: ignore[union-attr]
    row = gw.wait_rows(before + 1)[-1]
    time.sleep(0.3)
    assert len(gw.rows()) == before + 1  # one streamed call, one row
    assert (row["client"], row["model_asked"], row["status"]) == ("acme", "claude-sonnet-4-5-20250929", "ok")
    assert "claude-sonnet-4-5" in row["model_used"]
    assert (row["input_tokens"], row["output_tokens"]) == (10, 10)  # what the fake API reported
    assert Decimal(row["cost_nanos"]) / 10**9 == 10 * SONNET_IN + 10 * SONNET_OUT
    (st,) = [s for s in budgets.status(gw.engine) if s.budget.client == "acme"]
    assert st.reserved == 0 and st.spent == 10 * SONNET_IN + 10 * SONNET_OUT


def test_claude_code_routed_through_the_proxy_is_attributed_per_session(gw: Proxy, tmp_path: Path) -> None:
    """The documented set-up (compose/README.md): ANTHROPIC_BASE_URL at the proxy, the client in a header."""
    claude = os.environ.get("AISTACK_CLAUDE_BIN", "").strip()
    if not claude:
        if os.environ.get("CI"):
            pytest.fail("CI is set but AISTACK_CLAUDE_BIN is not (see .ci/claude_code.sh)")
        pytest.skip("AISTACK_CLAUDE_BIN is unset: no Claude Code CLI to drive")
    home = tmp_path / "home"
    (home / ".claude").mkdir(parents=True)
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", ""), "ANTHROPIC_BASE_URL": gw.url,
           "ANTHROPIC_API_KEY": gw.key, "ANTHROPIC_CUSTOM_HEADERS": "x-litellm-tags: client:acme,session:e2e",
           "DISABLE_TELEMETRY": "1", "DISABLE_ERROR_REPORTING": "1", "DISABLE_AUTOUPDATER": "1",
           "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}
    before = len(gw.rows())
    proc = subprocess.run([claude, "-p", "hello", "--output-format", "json", "--model", "claude-sonnet-4-5-20250929"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert json.loads(proc.stdout)["result"] == FINAL_TEXT  # the fake model answered through the proxy
    rows = gw.wait_rows(before + 1)[before:]
    assert rows and all(r["client"] == "acme" and r["caller"] == "proxy" and r["status"] == "ok" for r in rows)
    assert any("session:e2e" in json.loads(r["tags"]) for r in rows)
    assert sum(r["cost_nanos"] for r in rows) > 0


def test_serve_takes_the_master_key_and_default_client_from_settings(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """`.env` values reach the proxy: clients use the key the user configured, untagged calls the client named."""
    monkeypatch.delenv("LITELLM_MASTER_KEY", raising=False)
    cfg = _config_file(tmp_path)
    env_file = tmp_path / ".env"
    env_file.write_text(f"LITELLM_MASTER_KEY={fake_key('master')}\nPROXY_DEFAULT_CLIENT=studio\n")
    settings = load_settings(env_file=env_file, aistack_home=tmp_path)
    _, env, where = proxy.prepare(settings, cfg, "127.0.0.1", 4000)
    assert (env["LITELLM_MASTER_KEY"], where, env["PROXY_DEFAULT_CLIENT"]) == (
        fake_key("master"), "LITELLM_MASTER_KEY", "studio")
    assert not (tmp_path / proxy.KEY_FILE).exists()


def _config_file(tmp_path: Path) -> Path:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"model_list": [{"model_name": "x", "litellm_params": {"model": "openai/x"}}],
                                   "litellm_settings": {"callbacks": [proxy.CALLBACK]}}))
    return cfg


def test_serve_refuses_a_config_without_our_callback(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"model_list": [{"model_name": "x", "litellm_params": {"model": "openai/x"}}]}))
    settings = load_settings(env_file=None, aistack_home=tmp_path)
    with pytest.raises(proxy.ProxyError, match="callbacks must list"):
        proxy.prepare(settings, cfg, "127.0.0.1", 4000)


async def test_a_virtual_key_alias_names_the_client(tmp_path: Path) -> None:
    """With a proxy database, LiteLLM's virtual keys carry an alias: it wins over tags."""
    from litellm.proxy._types import UserAPIKeyAuth

    from services.gateway import proxy_callback
    from services.gateway.router import load_config
    from services.gateway.service import Gateway

    settings = load_settings(env_file=None, aistack_home=tmp_path, database_url=f"sqlite:///{tmp_path / 'a.db'}")
    upgrade(settings.db_url)
    engine = make_engine(settings.db_url)
    handler = proxy_callback.ProxyBudgetHandler()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"model_list": [{"model_name": "gpt", "litellm_params": {
        "model": "openai/gpt-4o", "api_base": refused_url(), "api_key": fake_key("test")}}]}))
    handler._gateway = Gateway(settings, engine, load_config(cfg))
    budgets.set_budget(engine, "initech", Decimal("0.0001"), "day")
    data: dict[str, Any] = {"model": "gpt", "max_tokens": 1000, "messages": [{"role": "user", "content": "hi"}],
                            "metadata": {"tags": ["client:acme"]}}
    with pytest.raises(Exception, match="initech") as refused:
        await handler.async_pre_call_hook(UserAPIKeyAuth(key_alias="initech"), None, data, "acompletion")
    assert getattr(refused.value, "status_code", None) == 429
    out = await handler.async_pre_call_hook(UserAPIKeyAuth(key_alias=None), None, data, "acompletion")
    assert proxy_callback.CALL_KEY in out["metadata"]  # acme has no budget: reserved (nothing) and let through
    engine.dispose()


async def test_an_unreachable_budget_database_fails_closed(tmp_path: Path) -> None:
    """No budget check, no call: a clean 503 that names the cause, with no SQL or file paths in it."""
    from litellm.proxy._types import UserAPIKeyAuth

    from services.gateway import proxy_callback
    from services.gateway.router import load_config
    from services.gateway.service import Gateway

    settings = load_settings(env_file=None, aistack_home=tmp_path, database_url=f"sqlite:///{tmp_path / 'gone.db'}")
    upgrade(settings.db_url)
    engine = make_engine(settings.db_url)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"model_list": [{"model_name": "gpt", "litellm_params": {
        "model": "openai/gpt-4o", "api_base": refused_url(), "api_key": fake_key("test")}}]}))
    handler = proxy_callback.ProxyBudgetHandler()
    handler._gateway = Gateway(settings, engine, load_config(cfg))
    with engine.begin() as conn:  # the ledger's tables vanish (a wrong DATABASE_URL, a restored old file…)
        conn.exec_driver_sql("DROP TABLE gateway_budgets")
    data: dict[str, Any] = {"model": "gpt", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    with pytest.raises(Exception) as refused:
        await handler.async_pre_call_hook(UserAPIKeyAuth(), None, data, "acompletion")
    assert getattr(refused.value, "status_code", None) == 503
    detail = str(getattr(refused.value, "detail", ""))
    assert "nothing was sent" in detail and "SELECT" not in detail and str(tmp_path) not in detail
    engine.dispose()
