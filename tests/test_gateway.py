"""The embedded gateway end to end: the real litellm Router against fake model servers on 127.0.0.1 that speak the
OpenAI and Ollama wire formats, with budgets and the ledger in a real database."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from services.gateway import budgets, ledger
from services.gateway.router import GatewayConfig, GatewayConfigError, load_config
from services.gateway.service import Gateway, GatewayError
from services.settings import load_settings
from services.store.db import make_engine, upgrade
from tests.fake_models import FakeOllamaServer, FakeOpenAIServer, refused_url

GPT_IN, GPT_OUT = Decimal("0.0000025"), Decimal("0.00001")  # gpt-4o in LiteLLM's bundled price table


def fake_key() -> str:
    return "-".join(["sk", "test", "x" * 24])


def config(ollama_url: str, openai_base: str) -> GatewayConfig:
    return GatewayConfig(path=Path("test-config.yaml"), model_list=[
        {"model_name": "local", "litellm_params": {"model": "ollama_chat/llama3.2", "api_base": ollama_url}},
        {"model_name": "gpt", "litellm_params": {"model": "openai/gpt-4o", "api_base": openai_base,
                                                 "api_key": fake_key()}},
    ], router_settings={"fallbacks": [{"local": ["gpt"]}], "num_retries": 0, "disable_cooldowns": True,
                        "timeout": 10})


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    url = f"sqlite:///{tmp_path / 'gw.db'}"
    upgrade(url)
    return make_engine(url)


@pytest.fixture
def openai() -> Any:
    with FakeOpenAIServer() as s:
        yield s


@pytest.fixture
def ollama() -> Any:
    with FakeOllamaServer(models=["llama3.2"]) as s:
        yield s


def gateway(engine: Engine, cfg: GatewayConfig, tmp_path: Path) -> Gateway:
    settings = load_settings(env_file=None, aistack_home=tmp_path, tz="UTC")
    return Gateway(settings, engine, cfg)


def rows(engine: Engine) -> list[dict[str, Any]]:
    from sqlalchemy import text

    with engine.connect() as c:
        return [dict(r._mapping) for r in c.execute(text("SELECT * FROM gateway_ledger ORDER BY id"))]


def ask(gw: Gateway, client: str = "acme", model: str = "local", max_tokens: int = 64, **kw: Any) -> Any:
    return gw.complete(client, [{"role": "user", "content": "Summarise the retry policy in one line."}],
                       model=model, max_tokens=max_tokens, **kw)


def test_a_local_call_is_answered_by_ollama_and_logged(engine: Engine, ollama: Any, openai: Any,
                                                       tmp_path: Path) -> None:
    gw = gateway(engine, config(ollama.url, openai.api_base), tmp_path)
    r = ask(gw, tags=["triage"])
    assert r.text and r.model_used == "ollama_chat/llama3.2" and r.cost_usd == 0
    assert ollama.count >= 1 and openai.count == 0
    [row] = rows(engine)
    assert (row["client"], row["model_asked"], row["model_used"], row["status"]) == (
        "acme", "local", "ollama_chat/llama3.2", "ok")
    assert row["input_tokens"] and row["output_tokens"] and "triage" in str(row["tags"])


def test_when_the_local_server_is_down_the_call_falls_back_to_the_cloud(engine: Engine, openai: Any,
                                                                        tmp_path: Path) -> None:
    gw = gateway(engine, config(refused_url(), openai.api_base), tmp_path)
    r = ask(gw)
    assert r.model_asked == "local" and r.model_used == "openai/gpt-4o" and openai.count == 1
    # The cost is LiteLLM's own: the fake's usage at gpt-4o's bundled prices.
    assert r.input_tokens is not None and r.output_tokens is not None
    assert r.cost_usd is not None
    assert float(r.cost_usd) == pytest.approx(float(r.input_tokens * GPT_IN + r.output_tokens * GPT_OUT), rel=1e-9)
    [row] = rows(engine)
    assert (row["model_asked"], row["model_used"]) == ("local", "openai/gpt-4o")


def test_a_call_over_budget_is_refused_before_anything_is_sent(engine: Engine, openai: Any,
                                                               tmp_path: Path) -> None:
    gw = gateway(engine, config(refused_url(), openai.api_base), tmp_path)
    budgets.set_budget(engine, "acme", Decimal("0.001"), period="day")
    with pytest.raises(budgets.BudgetExceeded) as err:
        ask(gw, model="gpt", max_tokens=1000)  # worst case ≥ 1000 × $0.00001 = $0.01
    assert "acme" in str(err.value) and "reset" in str(err.value).lower()
    assert openai.count == 0
    assert [r["status"] for r in rows(engine)] == ["refused"]
    ask(gw, client="beta", model="gpt", max_tokens=1000)  # another client is not limited by acme's budget
    assert openai.count == 1


def test_concurrent_calls_near_the_limit_never_overspend(engine: Engine, openai: Any, tmp_path: Path) -> None:
    gw = gateway(engine, config(refused_url(), openai.api_base), tmp_path)
    worst = gw.worst_case("gpt", [{"role": "user", "content": "Summarise the retry policy in one line."}], 200)
    assert worst is not None
    limit = worst * 5 + worst / 2  # room for five worst cases, not six
    budgets.set_budget(engine, "acme", limit, period="month")

    async def one() -> str:
        try:
            await gw.acomplete("acme", [{"role": "user", "content": "Summarise the retry policy in one line."}],
                               model="gpt", max_tokens=200)
            return "ok"
        except budgets.BudgetExceeded:
            return "refused"

    async def all20() -> list[str]:
        return list(await asyncio.gather(*(one() for _ in range(20))))

    outcomes = asyncio.run(all20())
    spent = Decimal(sum((r["cost_nanos"] or 0) for r in rows(engine) if r["status"] == "ok")) / 10**9
    assert outcomes.count("ok") >= 5 and openai.count == outcomes.count("ok")
    assert spent <= limit
    [st] = budgets.status(engine)
    assert st.spent <= limit and st.reserved == 0


def test_a_failed_call_is_logged_and_releases_its_reservation(engine: Engine, tmp_path: Path) -> None:
    gw = gateway(engine, config(refused_url(), refused_url() + "/v1"), tmp_path)
    budgets.set_budget(engine, "acme", Decimal("5"), period="month")
    with pytest.raises(GatewayError):
        ask(gw)
    assert [r["status"] for r in rows(engine)] == ["error"]
    [st] = budgets.status(engine)
    assert st.reserved == 0 and st.spent == 0


def test_the_ledger_survives_a_restart(tmp_path: Path, ollama: Any, openai: Any) -> None:
    url = f"sqlite:///{tmp_path / 'gw.db'}"
    upgrade(url)
    gw = gateway(make_engine(url), config(ollama.url, openai.api_base), tmp_path)
    ask(gw)
    gw.engine.dispose()
    again = make_engine(url)
    assert [r["model_asked"] for r in rows(again)] == ["local"]
    assert ledger.report(again, "client")[0].calls == 1


def test_unknown_alias_and_bad_config_are_clear_errors(engine: Engine, tmp_path: Path) -> None:
    gw = gateway(engine, config(refused_url(), refused_url()), tmp_path)
    with pytest.raises(GatewayError, match="unknown model 'nope'"):
        ask(gw, model="nope")
    bad = tmp_path / "c.yaml"
    bad.write_text("model_list:\n  - model_name: a\n    litellm_params: {model: openai/x}\nrouter_settings:\n"
                   "  fallbacks: [{a: [b]}]\n")
    with pytest.raises(GatewayConfigError, match="'b'"):
        load_config(bad)


def test_the_default_config_loads() -> None:
    cfg = load_config(None)
    assert {"local", "claude", "gpt"} <= set(cfg.aliases())
    assert "claude" in cfg.chain("local")


def test_a_model_litellm_cannot_price_is_booked_as_unknown_not_free(engine: Engine, openai: Any,
                                                                    tmp_path: Path) -> None:
    """LiteLLM reports 0.0 for a model it cannot price; the ledger must say "unknown", not "free"."""
    cfg = GatewayConfig(path=Path("test-config.yaml"), model_list=[
        {"model_name": "mystery", "litellm_params": {"model": "openai/mystery-model-x", "api_base": openai.api_base,
                                                     "api_key": fake_key()}}],
        router_settings={"num_retries": 0, "disable_cooldowns": True})
    result = gateway(engine, cfg, tmp_path).complete("acme", [{"role": "user", "content": "hi"}], model="mystery",
                                                     max_tokens=20)
    assert result.text and result.cost_usd is None
    with engine.connect() as conn:
        assert conn.execute(text("SELECT cost_nanos FROM gateway_ledger")).scalar_one() is None
    assert [r.unpriced for r in ledger.report(engine, "client")] == [1]  # /spend flags it
