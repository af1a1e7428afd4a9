"""The gateway's config and its LiteLLM Router, built lazily: `import litellm` costs ~4 s and ~200 MB, so only a
process that really calls a model pays it, and never a CLI path that only reads the ledger, nor a hook.

The config is one YAML file in the LiteLLM proxy's own format (`model_list`, `router_settings`,
`litellm_settings`), at GATEWAY_CONFIG or `compose/litellm.yaml`; the same file serves `aistack gateway serve`
(the real proxy), so switching between the embedded gateway and the proxy needs no code change.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = ROOT / "compose" / "litellm.yaml"
# Router settings the proxy understands that the embedded Router takes as keyword arguments.
ROUTER_KEYS = ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks", "num_retries", "timeout",
               "allowed_fails", "cooldown_time", "disable_cooldowns", "retry_after", "routing_strategy",
               "default_max_parallel_requests", "stream_timeout", "model_group_alias", "retry_policy",
               "allowed_fails_policy")


class GatewayConfigError(Exception):
    """The gateway config is missing or wrong; the message names the file and what to fix."""


@dataclass
class GatewayConfig:
    path: Path
    model_list: list[dict[str, Any]]
    router_settings: dict[str, Any] = field(default_factory=dict)
    litellm_settings: dict[str, Any] = field(default_factory=dict)
    _priced: dict[str, bool] = field(default_factory=dict, repr=False, compare=False)  # known_price's answers
    _prices: dict[str, tuple[Decimal, Decimal] | None] = field(default_factory=dict, repr=False, compare=False)

    def aliases(self) -> list[str]:
        return list(dict.fromkeys(str(m["model_name"]) for m in self.model_list))

    def resolve(self, name: str) -> str:
        """The model_name a requested name is served by: itself, or its `model_group_alias` target."""
        target = (self.router_settings.get("model_group_alias") or {}).get(name)
        if isinstance(target, dict):  # LiteLLM's long form: {model: ..., hidden: ...}
            target = target.get("model")
        return str(target) if target else name

    def deployments(self, alias: str) -> list[dict[str, Any]]:
        return [m for m in self.model_list if m.get("model_name") == alias]

    def chain(self, alias: str) -> list[str]:
        """The alias and every alias a call to it may fall back to, in order."""
        out = [alias]
        for entry in self.router_settings.get("fallbacks") or []:
            for src, targets in dict(entry).items():
                if src == alias:
                    out += [t for t in targets if t not in out]
        return out


def load_config(path: Path | None = None) -> GatewayConfig:
    path = Path(path or DEFAULT_CONFIG)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise GatewayConfigError(f"{path}: no gateway config there; set GATEWAY_CONFIG or restore "
                                 "compose/litellm.yaml") from None
    except yaml.YAMLError as exc:
        raise GatewayConfigError(f"{path}: not valid YAML ({exc})") from None
    models = data.get("model_list")
    if not isinstance(models, list) or not models:
        raise GatewayConfigError(f"{path}: `model_list` must list at least one model")
    for i, m in enumerate(models):
        if not isinstance(m, dict) or "model_name" not in m or "model" not in (m.get("litellm_params") or {}):
            raise GatewayConfigError(f"{path}: model_list[{i}] needs `model_name` and `litellm_params.model`")
    cfg = GatewayConfig(path=path, model_list=models, router_settings=dict(data.get("router_settings") or {}),
                        litellm_settings=dict(data.get("litellm_settings") or {}))
    known = set(cfg.aliases())
    for entry in cfg.router_settings.get("fallbacks") or []:
        for src, targets in dict(entry).items():
            for name in [src, *targets]:
                if name not in known:
                    raise GatewayConfigError(f"{path}: fallback names {name!r}, which is not a model_name in "
                                             f"model_list ({', '.join(sorted(known))})")
    return cfg


_IMPORT_LOCK = threading.Lock()


def litellm_module() -> Any:
    """`litellm`, imported once with its local price map (else it fetches prices from the network at import)."""
    with _IMPORT_LOCK:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        os.environ.setdefault("LITELLM_LOG", "ERROR")
        import litellm

        litellm.telemetry = False
        litellm.suppress_debug_info = True
        return litellm


def build_router(cfg: GatewayConfig) -> Any:
    litellm = litellm_module()
    if cfg.litellm_settings.get("drop_params"):
        litellm.drop_params = True
    kwargs = {k: v for k, v in cfg.router_settings.items() if k in ROUTER_KEYS}
    return litellm.Router(model_list=cfg.model_list, **kwargs)


def _deployment_model(dep: dict[str, Any]) -> str:
    return str(dep["litellm_params"]["model"])


LOCAL_PROVIDERS = ("ollama/", "ollama_chat/")  # models on the user's own machine: free unless model_info says


def is_local(model: str | None) -> bool:
    return bool(model) and str(model).startswith(LOCAL_PROVIDERS)


def known_price(cfg: GatewayConfig, model: str | None) -> bool:
    """Whether a cost LiteLLM reports for deployment model `model` means anything. LiteLLM says 0.0 both for a free
    call and for one it could not price; only a local model, explicit prices in the config or an entry in LiteLLM's
    price table make a 0 real."""
    if not model:
        return False
    if model not in cfg._priced:
        cfg._priced[model] = is_local(model) or any(
            (dep["litellm_params"].get("input_cost_per_token",
                                       (dep.get("model_info") or {}).get("input_cost_per_token")) is not None)
            for dep in cfg.model_list if _deployment_model(dep) == model) or _in_price_table(model)
    return cfg._priced[model]


_BUNDLED: dict[str, Any] = {}


def _table_prices(model: str) -> tuple[Any, Any] | None:
    """(input, output) price per token in the table LiteLLM ships with, or None. Not `litellm.model_cost`: a Router
    registers every deployment there, with zero prices for the ones it cannot price, so by then all look priced."""
    litellm = litellm_module()
    with _IMPORT_LOCK:
        if not _BUNDLED:
            path = Path(litellm.__file__).parent / "model_prices_and_context_window_backup.json"
            _BUNDLED.update(json.loads(path.read_text(encoding="utf-8")))
    try:
        name, provider, _, _ = litellm.get_llm_provider(model)
    except Exception:  # no provider LiteLLM knows: nothing can price it
        return None
    for key in (model, name, f"{provider}/{name}"):
        entry = _BUNDLED.get(key)
        if isinstance(entry, dict) and entry.get("input_cost_per_token") is not None \
                and entry.get("output_cost_per_token") is not None:
            return entry["input_cost_per_token"], entry["output_cost_per_token"]
    return None


def _in_price_table(model: str) -> bool:
    return _table_prices(model) is not None


def prices(cfg: GatewayConfig, alias: str) -> tuple[Decimal, Decimal] | None:
    """The highest (input, output) price per token over every deployment a call to `alias` may reach (fallbacks
    included): the worst case a budget reservation must cover. None when one of them has no price."""
    if alias not in cfg._prices:
        cfg._prices[alias] = _chain_prices(cfg, alias)
    return cfg._prices[alias]


def _chain_prices(cfg: GatewayConfig, alias: str) -> tuple[Decimal, Decimal] | None:
    best_in, best_out = Decimal(0), Decimal(0)
    for name in cfg.chain(alias):
        for dep in cfg.deployments(name):
            info = dep.get("model_info") or {}
            params = dep["litellm_params"]
            p_in = params.get("input_cost_per_token", info.get("input_cost_per_token"))
            p_out = params.get("output_cost_per_token", info.get("output_cost_per_token"))
            if (p_in is None or p_out is None) and is_local(_deployment_model(dep)):
                p_in, p_out = p_in or 0, p_out or 0
            if p_in is None or p_out is None:
                table = _table_prices(_deployment_model(dep))
                if table is None:
                    return None
                p_in = table[0] if p_in is None else p_in
                p_out = table[1] if p_out is None else p_out
            best_in, best_out = max(best_in, Decimal(str(p_in))), max(best_out, Decimal(str(p_out)))
    return best_in, best_out


def prompt_tokens(cfg: GatewayConfig, alias: str, messages: list[dict[str, Any]]) -> int:
    """Tokens in the prompt, counted with LiteLLM's tokenizer for the alias's first deployment, plus 10 % for the
    differences between tokenizers along the fallback chain."""
    litellm = litellm_module()
    deps = cfg.deployments(alias)
    model = _deployment_model(deps[0]) if deps else alias
    try:
        n = int(litellm.token_counter(model=model, messages=messages))
    except Exception:  # an unknown tokenizer: characters / 3 over-counts for every tokenizer we know
        n = sum(len(str(m.get("content") or "")) for m in messages) // 3 + 16
    return int(n * 1.1) + 8
