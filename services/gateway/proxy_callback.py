"""Our budgets and ledger inside the real LiteLLM proxy: a CustomLogger named in the config's
`litellm_settings.callbacks` (`services.gateway.proxy_callback.proxy_handler_instance`).

- `async_pre_call_hook` reserves the call's worst case against the client's budgets, or refuses it with HTTP 429
  before anything is sent upstream (and writes the "refused" ledger row). The client is the virtual key's alias
  when the proxy has one, else the `client:<name>` tag (request `metadata.tags`, `litellm_metadata.tags` for
  /v1/messages, or the `x-litellm-tags` header), else PROXY_DEFAULT_CLIENT (default `internal`).
- `async_log_success_event` settles the reservation to the real cost and writes the ledger row. It runs once per
  answered request (streams included, with the assembled response), for whichever deployment answered.
- `async_post_call_failure_hook` settles a request that failed on every deployment and fallback. The per-deployment
  `async_log_failure_event` is deliberately not used: with a fallback, a failed first attempt is followed by an
  answer, and the request must be one ledger row.

The proxy process finds our database through AISTACK_DATABASE_URL (LiteLLM would take DATABASE_URL for its own
Prisma database), else the SQLite file under AISTACK_HOME, and prices through GATEWAY_CONFIG (the same file the
proxy was started with). Imported only inside the proxy, where litellm is already loaded.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fastapi import HTTPException
from litellm.integrations.custom_logger import CustomLogger

from services.lore.clients import DEFAULT_CLIENT, NAME_RE

from . import budgets, ledger
from .service import DEFAULT_MAX_TOKENS, Gateway, GatewayError

log = logging.getLogger(__name__)
CALL_KEY = "aistack_call"  # our token in the request's metadata, linking the pre-call hook to the log events
PENDING_TTL = 3600.0  # a reservation the proxy never reported back on is dropped here (the ledger's stale sweep
# releases its money)


def client_of(key_alias: str | None, tags: list[str], default: str) -> str:
    """The client a request is billed to: a valid key alias, else the first `client:` tag, else the default."""
    if key_alias and NAME_RE.match(key_alias):
        return key_alias
    for tag in tags:
        if isinstance(tag, str) and tag.startswith("client:") and NAME_RE.match(tag[7:]):
            return tag[7:]
    return default


def _metadata(data: dict[str, Any]) -> dict[str, Any]:
    """The request's LiteLLM metadata: `litellm_metadata` on /v1/messages (Anthropic owns `metadata` there)."""
    key = "litellm_metadata" if isinstance(data.get("litellm_metadata"), dict) else "metadata"
    meta = data.get(key)
    if not isinstance(meta, dict):
        meta = data[key] = {}
    return meta


def _tags(data: dict[str, Any], meta: dict[str, Any]) -> list[str]:
    tags = [*(meta.get("tags") or []), *(data.get("tags") or [])]
    return [t for t in dict.fromkeys(tags) if isinstance(t, str)]


def _messages(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Chat messages to count the prompt from; Anthropic's separate `system` counts as one more message."""
    msgs = [m for m in data.get("messages") or [] if isinstance(m, dict)]
    system = data.get("system")
    if system:
        text = system if isinstance(system, str) else " ".join(
            b.get("text", "") for b in system if isinstance(b, dict))
        msgs = [{"role": "system", "content": text}, *msgs]
    return msgs


class ProxyBudgetHandler(CustomLogger):
    def __init__(self) -> None:
        super().__init__()
        self._gateway: Gateway | None = None
        self._calls: dict[str, tuple[float, budgets.Reservation, str, list[str], str]] = {}

    # ------------------------------------------------------------------------------------------- wiring

    def gateway(self) -> Gateway:
        """Our settings, database and gateway config, opened on first use (the proxy imports us at start-up)."""
        if self._gateway is None:
            from services.runtime import bootstrap
            from services.settings import load_settings

            overrides: dict[str, Any] = {}
            if os.environ.get("AISTACK_DATABASE_URL"):
                overrides["database_url"] = os.environ["AISTACK_DATABASE_URL"]
            settings = load_settings(env_file=None, **overrides)
            rt = bootstrap(settings)
            self._gateway = Gateway(settings, rt.engine)
        return self._gateway

    def default_client(self) -> str:
        return os.environ.get("PROXY_DEFAULT_CLIENT") or DEFAULT_CLIENT

    # ------------------------------------------------------------------------------------------- before

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict[str, Any],
                                  call_type: Any) -> dict[str, Any]:
        meta = _metadata(data)
        tags = _tags(data, meta)
        client = client_of(getattr(user_api_key_dict, "key_alias", None), tags, self.default_client())
        model = str(data.get("model") or "")
        own_tags = [t for t in tags if not t.startswith("client:")]
        max_tokens = int(data.get("max_tokens") or data.get("max_completion_tokens") or DEFAULT_MAX_TOKENS)
        gw = await asyncio.to_thread(self.gateway)
        alias = gw.config.resolve(model)
        try:
            reservation, _ = await asyncio.to_thread(gw.reserve, client, own_tags, alias, _messages(data),
                                                     max_tokens, "proxy", model_asked=model)
        except budgets.BudgetExceeded as exc:
            raise HTTPException(status_code=429, detail=f"refused by the aistack budget: {exc}") from None
        except GatewayError as exc:  # e.g. an unpriced model for a budgeted client: refused, nothing sent
            raise HTTPException(status_code=400, detail=f"refused by the aistack gateway: {exc}") from None
        token = uuid.uuid4().hex
        meta[CALL_KEY] = token
        self._sweep()
        self._calls[token] = (time.monotonic(), reservation, client, own_tags, model)
        return data

    def _sweep(self) -> None:
        cutoff = time.monotonic() - PENDING_TTL
        for token in [t for t, c in self._calls.items() if c[0] < cutoff]:
            del self._calls[token]

    # ------------------------------------------------------------------------------------------- after

    async def async_log_success_event(self, kwargs: dict[str, Any], response_obj: Any, start_time: Any,
                                      end_time: Any) -> None:
        call = self._take(kwargs.get("litellm_params", {}).get("metadata"), kwargs.get("standard_logging_object"))
        if call is None:
            return
        t0, reservation, client, tags, model = call
        slo = kwargs.get("standard_logging_object") or {}
        usage = (slo.get("metadata") or {}).get("usage_object") or {}
        cache_create = int(usage.get("cache_creation_input_tokens") or 0)
        cache_read = int(usage.get("cache_read_input_tokens") or 0)
        prompt = slo.get("prompt_tokens")
        cost = slo.get("response_cost", kwargs.get("response_cost"))
        row = ledger.LedgerRow(
            ts=datetime.now(UTC), client=client, tags=tags, caller="proxy", model_asked=model,
            model_used=slo.get("hidden_params", {}).get("litellm_model_name") or slo.get("model"),
            input_tokens=None if prompt is None else max(0, int(prompt) - cache_create - cache_read),
            output_tokens=slo.get("completion_tokens"), cache_creation_input_tokens=cache_create,
            cache_read_input_tokens=cache_read, cost_usd=None if cost is None else Decimal(str(cost)),
            latency_ms=(time.monotonic() - t0) * 1000, status="ok", request_id=slo.get("id"))
        await asyncio.to_thread(budgets.settle, self.gateway().engine, reservation, row,
                                tz=self.gateway().settings.zone)

    async def async_post_call_failure_hook(self, request_data: dict[str, Any], original_exception: Exception,
                                           user_api_key_dict: Any, traceback_str: str | None = None) -> None:
        call = self._take(_metadata(request_data), None)
        if call is None:  # refused by our own pre-call hook (already a ledger row), or never reserved
            return
        t0, reservation, client, tags, model = call
        row = ledger.LedgerRow(
            ts=datetime.now(UTC), client=client, tags=tags, caller="proxy", model_asked=model, model_used=None,
            cost_usd=Decimal(0), latency_ms=(time.monotonic() - t0) * 1000, status="error",
            error=f"{type(original_exception).__name__}: {original_exception}"[:500])
        await asyncio.to_thread(budgets.settle, self.gateway().engine, reservation, row,
                                tz=self.gateway().settings.zone)

    def _take(self, meta: Any, slo: Any) -> tuple[float, budgets.Reservation, str, list[str], str] | None:
        token = meta.get(CALL_KEY) if isinstance(meta, dict) else None
        if token is None and isinstance(slo, dict):
            token = (slo.get("metadata") or {}).get(CALL_KEY)
        return self._calls.pop(token, None) if token else None


proxy_handler_instance = ProxyBudgetHandler()
