"""`aistack gateway serve`: the real LiteLLM proxy with our config and callback, as a child command line.

The proxy is an optional extra (requirements-proxy.lock); it reads the same config as the embedded gateway, and its
`litellm_settings.callbacks` entry loads services/gateway/proxy_callback.py, so both modes share one ledger and one
set of budgets. Nothing here imports litellm: the proxy process does.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import sys
from pathlib import Path

from services.settings import Settings

from .router import DEFAULT_CONFIG, ROOT

CALLBACK = "services.gateway.proxy_callback.proxy_handler_instance"
KEY_FILE = "proxy-master-key"


class ProxyError(Exception):
    """The proxy cannot start as asked; the message says what to do."""


def installed() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("fastapi", "uvicorn", "backoff", "apscheduler"))


def master_key(settings: Settings) -> tuple[str, str]:
    """LITELLM_MASTER_KEY (environment or .env), else a key generated once and kept (0600) under AISTACK_HOME;
    returns (key, where)."""
    if settings.litellm_master_key:
        return settings.litellm_master_key, "LITELLM_MASTER_KEY"
    path = settings.aistack_home / KEY_FILE
    if not path.exists():
        settings.aistack_home.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("sk-aistack-" + secrets.token_urlsafe(24) + "\n")
    return path.read_text().strip(), str(path)


def check_config(config: Path) -> None:
    import yaml

    try:
        data = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ProxyError(f"{config}: cannot read the gateway config ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("litellm_settings") or {}, dict):
        raise ProxyError(f"{config}: not a LiteLLM config (a mapping with model_list, litellm_settings, …)")
    callbacks = (data.get("litellm_settings") or {}).get("callbacks") or []
    if not isinstance(callbacks, list) or CALLBACK not in callbacks:
        raise ProxyError(f"{config}: litellm_settings.callbacks must list {CALLBACK!r}, else the proxy would spend "
                         "without our budgets and ledger; add it (see compose/litellm.yaml)")
    general = data.get("general_settings") or {}
    if isinstance(general, dict) and general.get("database_url"):
        raise ProxyError(f"{config}: remove general_settings.database_url; spend lives in our ledger, and the "
                         "proxy's own database is not used")


def command(config: Path, host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "litellm.proxy.proxy_cli", "--config", str(config), "--host", host,
            "--port", str(port), "--num_workers", "1"]


def environment(settings: Settings, config: Path, key: str) -> dict[str, str]:
    """The proxy's environment: ours, minus DATABASE_URL (LiteLLM would take it for its Prisma database)."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(AISTACK_DATABASE_URL=settings.db_url, AISTACK_HOME=str(settings.aistack_home),
               GATEWAY_CONFIG=str(config), LITELLM_MASTER_KEY=key, LITELLM_LOCAL_MODEL_COST_MAP="True",
               PROXY_DEFAULT_CLIENT=settings.proxy_default_client,
               OLLAMA_API_BASE=settings.ollama_api_base, TZ=settings.tz,
               PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p))
    env.setdefault("LITELLM_LOG", "ERROR")
    # Keys from .env reach the proxy's `os.environ/…` references the same way they reach the embedded gateway.
    for name, value in (("ANTHROPIC_API_KEY", settings.anthropic_api_key), ("OPENAI_API_KEY", settings.openai_api_key)):
        if value:
            env.setdefault(name, value)
    return env


def prepare(settings: Settings, config: Path | None, host: str, port: int) -> tuple[list[str], dict[str, str], str]:
    """Everything `serve` needs: (argv, env, where the master key is). Raises ProxyError with what to do."""
    if not installed():
        raise ProxyError("the LiteLLM proxy is not installed: run `./dev gateway serve` (installs "
                         "requirements-proxy.lock) or `pip install -r requirements-proxy.lock --no-deps`")
    config = Path(config or settings.gateway_config or DEFAULT_CONFIG)
    check_config(config)
    key, where = master_key(settings)
    return command(config, host, port), environment(settings, config, key), where
