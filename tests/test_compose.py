"""compose/gateway.yml (the LiteLLM proxy's Compose file) and compose/litellm.yaml (the gateway config).

The Compose file is checked with pyyaml, and with `docker compose config` when a docker client with the compose
plugin is installed (that command needs no daemon). The gateway config is loaded into a real `litellm.Router`
offline, and then driven against the fakes on 127.0.0.1 to show its fallbacks, retries and (absent) cooldowns.
"""

from __future__ import annotations

import copy
import inspect
import json
import os
import re
import secrets
import shutil
import subprocess
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fake_models import FakeAnthropicServer, FakeOllamaServer

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_DIR = ROOT / "compose"
GATEWAY_YML = COMPOSE_DIR / "gateway.yml"
LITELLM_YAML = COMPOSE_DIR / "litellm.yaml"
ALIASES = {"local", "local-reasoning", "claude", "claude-fast", "gpt"}
PROXY_ENV = {"ANTHROPIC_API_KEY", "OPENAI_API_KEY", "OLLAMA_API_BASE", "AISTACK_HOME", "LITELLM_MASTER_KEY",
             "AISTACK_DATABASE_URL"}
# Shapes of real credentials (OpenAI/Anthropic keys, bearer tokens, long base64/hex runs).
SECRET_SHAPES = re.compile(r"sk-[A-Za-z0-9_-]{16,}|sk-ant-|Bearer\s+[A-Za-z0-9._-]{16,}|[A-Za-z0-9+/_-]{40,}")
MESSAGES = [{"role": "user", "content": "Say hello."}]


def litellm_pin() -> str:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (pin,) = [d.split("==", 1)[1] for d in deps if d.startswith("litellm==")]
    return pin


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(GATEWAY_YML.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def gateway_config() -> dict[str, Any]:
    data = yaml.safe_load(LITELLM_YAML.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="session")
def litellm() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # else it fetches the price map at import
    os.environ.setdefault("LITELLM_LOG", "ERROR")
    import litellm as module

    module.telemetry = False
    module.suppress_debug_info = True
    return module


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _walk(node: Any) -> Iterator[Any]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield k
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)
    else:
        yield node


# ---------------------------------------------------------------------------------------------- compose/gateway.yml


def test_compose_litellm_service(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"litellm", "postgres"}
    svc = services["litellm"]

    image, tag = svc["image"].rsplit(":", 1)
    assert image == "ghcr.io/berriai/litellm"
    assert tag == f"main-v{litellm_pin()}", "the proxy image must match the pinned Python package"
    assert svc["command"] == ["--config", "/app/config.yaml", "--port", "4000", "--host", "0.0.0.0"]
    assert svc["restart"] == "unless-stopped"

    mounts = {m.split(":")[1]: m for m in svc["volumes"]}
    assert mounts["/app/config.yaml"] == "./litellm.yaml:/app/config.yaml:ro"
    assert (COMPOSE_DIR / "litellm.yaml").is_file()
    services_src, services_dst, mode = mounts["/opt/aistack/services"].split(":")
    assert mode == "ro" and (COMPOSE_DIR / services_src / "gateway").is_dir()

    env = _env(svc)
    assert set(env) >= PROXY_ENV
    # LiteLLM takes DATABASE_URL (even empty) for its own Prisma database: it must not reach the proxy.
    assert "DATABASE_URL" not in env and "env_file" not in svc
    assert env["PYTHONPATH"] == str(Path(services_dst).parent)
    ledger_volume = mounts[env["AISTACK_HOME"]].split(":")[0]
    assert ledger_volume in compose["volumes"], "AISTACK_HOME must be a named volume"
    for name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "LITELLM_MASTER_KEY"):
        assert re.fullmatch(r"\$\{" + name + r"(:[-?][^}]*)?\}", env[name]), f"{name} must come from .env"

    assert svc["ports"] == ["127.0.0.1:4000:4000"]
    health = " ".join(svc["healthcheck"]["test"])
    assert "/health/liveliness" in health and "127.0.0.1:4000" in health
    assert svc["depends_on"]["postgres"] == {"condition": "service_healthy", "required": False}


def test_compose_postgres_profile_and_volumes(compose: dict[str, Any]) -> None:
    pg = compose["services"]["postgres"]
    assert pg["profiles"] == ["postgres"] and pg["restart"] == "unless-stopped"
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    (data_mount,) = pg["volumes"]
    volume, target = data_mount.split(":")
    assert target == "/var/lib/postgresql/data" and volume in compose["volumes"]
    assert _env(pg)["POSTGRES_PASSWORD"].startswith("${")

    used = {m.split(":")[0] for s in compose["services"].values() for m in s.get("volumes", [])
            if not m.startswith((".", "/"))}
    assert used == set(compose["volumes"]), "every named volume is declared, and every declared one is used"
    assert len(used) == 2, "the ledger and postgres have volumes of their own"


def test_compose_binds_loopback_only_and_holds_no_secret(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        for port in svc.get("ports", []):
            assert isinstance(port, str) and port.startswith("127.0.0.1:"), f"{name} publishes {port!r} beyond loopback"
    for value in _walk(compose):
        assert not (isinstance(value, str) and SECRET_SHAPES.search(value)), f"secret-shaped literal: {value!r}"


def _compose_cli() -> list[str] | None:
    """A Compose v2 CLI that works (the docker plugin or a standalone docker-compose v2), or None. (v1, the Python
    docker-compose, lacks `required:` in depends_on and `config --format json`.)"""
    candidates = [["docker", "compose"]] if shutil.which("docker") else []
    if shutil.which("docker-compose"):
        candidates.append(["docker-compose"])
    for cli in candidates:
        try:
            probe = subprocess.run([*cli, "version"], capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            continue
        version = re.search(r"(\d+)\.\d+\.\d+", probe.stdout)
        if probe.returncode == 0 and version and int(version.group(1)) >= 2:
            return cli
    return None


@pytest.mark.parametrize("profiles", [[], ["--profile", "postgres"]], ids=["default", "postgres"])
def test_docker_compose_config(profiles: list[str], tmp_path: Path) -> None:
    cli = _compose_cli()
    if cli is None:
        reason = ("the docker client has no Compose v2 plugin (`docker compose version` fails)"
                  if shutil.which("docker") else "no docker client with Compose v2 installed")
        pytest.skip(f"`docker compose config` not checked: {reason}; the pyyaml checks above still ran")
    env_file = tmp_path / "test.env"
    env_file.write_text(f"LITELLM_MASTER_KEY=sk-test-{secrets.token_hex(16)}\nPOSTGRES_PASSWORD={secrets.token_hex(8)}\n")
    run = subprocess.run([*cli, "--env-file", str(env_file), "-f", str(GATEWAY_YML), *profiles, "config",
                          "--format", "json"], capture_output=True, text=True, timeout=60, cwd=ROOT,
                         env={k: v for k, v in os.environ.items() if k != "GATEWAY_OLLAMA_API_BASE"})
    assert run.returncode == 0, run.stderr
    resolved = json.loads(run.stdout)
    expected = {"litellm", "postgres"} if profiles else {"litellm"}
    assert set(resolved["services"]) == expected
    litellm_svc = resolved["services"]["litellm"]
    assert litellm_svc["image"].endswith(f":main-v{litellm_pin()}")
    assert all(p.get("host_ip") == "127.0.0.1" for s in resolved["services"].values() for p in s.get("ports", []))
    assert litellm_svc["environment"]["OLLAMA_API_BASE"] == "http://host.docker.internal:11434"


# ---------------------------------------------------------------------------------------------- compose/litellm.yaml


def test_gateway_config_shape(gateway_config: dict[str, Any]) -> None:
    models = {m["model_name"]: m["litellm_params"] for m in gateway_config["model_list"]}
    assert set(models) == ALIASES and len(models) == len(gateway_config["model_list"])
    assert models["local"]["model"] == "ollama_chat/llama3.2"
    assert models["local-reasoning"]["model"] in ("ollama_chat/qwen3", "ollama_chat/deepseek-r1")
    assert models["claude"]["model"] == "anthropic/claude-sonnet-4-5-20250929"
    assert models["claude-fast"]["model"] == "anthropic/claude-haiku-4-5-20251001"
    assert models["gpt"]["model"] == "openai/gpt-4o"
    for alias in ("local", "local-reasoning"):
        assert models[alias]["api_base"] == "os.environ/OLLAMA_API_BASE"
        assert models[alias]["input_cost_per_token"] == 0 and models[alias]["output_cost_per_token"] == 0
    assert models["claude"]["api_key"] == models["claude-fast"]["api_key"] == "os.environ/ANTHROPIC_API_KEY"
    assert models["gpt"]["api_key"] == "os.environ/OPENAI_API_KEY"

    router = gateway_config["router_settings"]
    targets = [(src, dst) for entry in router["fallbacks"] for src, dsts in entry.items() for dst in dsts]
    assert targets == [("local", "claude"), ("local-reasoning", "claude")]
    assert set(router["model_group_alias"].values()) <= ALIASES
    assert not set(router["model_group_alias"]) & ALIASES
    assert router["disable_cooldowns"] is True and router["num_retries"] >= 1 and router["timeout"] > 0

    assert gateway_config["litellm_settings"]["drop_params"] is True
    assert gateway_config["litellm_settings"]["callbacks"] == ["services.gateway.proxy_callback.proxy_handler_instance"]
    general = gateway_config["general_settings"]
    assert "database_url" not in general and general["master_key"] == "os.environ/LITELLM_MASTER_KEY"


def test_gateway_config_holds_no_literal_key(gateway_config: dict[str, Any]) -> None:
    def keyish(name: str) -> bool:
        return bool(re.search(r"(api_key|master_key|auth_token|access_token|secret|password)$", name))

    def check(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if keyish(str(k)):
                    assert isinstance(v, str) and v.startswith("os.environ/"), f"{k} must be os.environ/…, not {v!r}"
                check(v)
        elif isinstance(node, list):
            for v in node:
                check(v)

    check(gateway_config)
    for value in _walk(gateway_config):
        assert not (isinstance(value, str) and SECRET_SHAPES.search(value)), f"secret-shaped literal: {value!r}"


def test_gateway_config_builds_a_router_offline(litellm: Any, gateway_config: dict[str, Any],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    router_settings = gateway_config["router_settings"]
    assert set(router_settings) <= set(inspect.signature(litellm.Router).parameters), "unknown Router argument"
    key = "sk-test-" + secrets.token_hex(12)
    monkeypatch.setenv("ANTHROPIC_API_KEY", key)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # a missing key must not stop the Router from loading
    monkeypatch.setenv("OLLAMA_API_BASE", "http://127.0.0.1:9")

    router = litellm.Router(model_list=copy.deepcopy(gateway_config["model_list"]), **router_settings)
    assert set(router.get_model_names()) >= ALIASES
    assert router.disable_cooldowns is True and router.fallbacks == router_settings["fallbacks"]
    assert router.retry_policy.DefaultRetries == 0 and router.retry_policy.InternalServerErrorRetries == 1
    params = {d["model_name"]: d["litellm_params"] for d in router.get_model_list()}
    assert params["claude"]["api_key"] == key  # os.environ/… resolved when the Router is built
    assert params["local"]["api_base"] == "http://127.0.0.1:9"
    assert params["gpt"].get("api_key") is None
    for alias, target in router_settings["model_group_alias"].items():
        (dep,) = router.get_model_list(model_name=alias)
        assert dep["litellm_params"]["model"] == params[target]["model"]


# ---------------------------------------------------------------------------------------------- the config in action


@pytest.fixture
def gateway(litellm: Any, gateway_config: dict[str, Any],
            monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, FakeOllamaServer, FakeAnthropicServer]]:
    """The config's Router with Ollama and Anthropic played by the fakes (the Anthropic endpoint is pinned in the
    config, so it is rewritten here; Ollama's comes from OLLAMA_API_BASE as in production)."""
    with FakeOllamaServer(reply="local answer") as ollama, FakeAnthropicServer(reply="claude answer") as anthropic:
        monkeypatch.setenv("OLLAMA_API_BASE", ollama.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-" + secrets.token_hex(12))
        model_list = copy.deepcopy(gateway_config["model_list"])
        for dep in model_list:
            if dep["litellm_params"]["model"].startswith("anthropic/"):
                dep["litellm_params"]["api_base"] = anthropic.url
        router = litellm.Router(model_list=model_list, **gateway_config["router_settings"])
        yield router, ollama, anthropic


async def test_gateway_fallbacks_retries_and_no_cooldown(
        gateway: tuple[Any, FakeOllamaServer, FakeAnthropicServer]) -> None:
    router, ollama, anthropic = gateway

    async def ask(model: str = "local") -> tuple[str, int, int]:
        before = ollama.count, anthropic.count
        resp = await router.acompletion(model=model, messages=MESSAGES)
        return resp.choices[0].message.content, ollama.count - before[0], anthropic.count - before[1]

    assert await ask() == ("local answer", 1, 0)
    # A 404 is not retried: straight to claude. The next call goes to Ollama again: no cooldown locked it out.
    ollama.fail_next(1, status=404)
    assert await ask() == ("claude answer", 1, 1)
    assert await ask() == ("local answer", 1, 0)
    # A 500 is retried once on the same deployment, which then answers.
    ollama.fail_next(1, status=500)
    assert await ask() == ("local answer", 2, 0)
    # Ollama down: no retry (and no back-off), Claude answers at once; streaming too, with usage.
    ollama.stop()
    started = time.monotonic()
    assert await ask("local-reasoning") == ("claude answer", 0, 1)
    assert time.monotonic() - started < 1.0
    stream = await router.acompletion(model="local", messages=MESSAGES, stream=True,
                                      stream_options={"include_usage": True})
    chunks = [c async for c in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "claude answer"
    assert chunks[-1].usage.completion_tokens == 10
    # Back up: local again at once.
    ollama.start()
    assert await ask() == ("local answer", 1, 0)


def test_gateway_answers_anthropic_model_ids(gateway: tuple[Any, FakeOllamaServer, FakeAnthropicServer]) -> None:
    router, _, anthropic = gateway
    resp = router.completion(model="claude-haiku-4-5-20251001", messages=MESSAGES)
    assert resp.choices[0].message.content == "claude answer"
    assert anthropic.message_requests()[-1]["model"] == "claude-haiku-4-5-20251001"
    local = router.completion(model="local-reasoning", messages=MESSAGES)
    assert local.choices[0].message.content == "local answer"


def test_every_variable_the_compose_file_reads_is_documented_in_env_example() -> None:
    text = (ROOT / "compose" / "gateway.yml").read_text()
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text))
    documented = set(re.findall(r"^([A-Z_][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.M))
    assert used, "the compose file reads no variables?"
    assert used <= documented, f"undocumented in .env.example: {sorted(used - documented)}"
