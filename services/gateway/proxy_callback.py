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
from .router import known_price
from .service import DEFAULT_MAX_TOKENS, Gateway, GatewayError

log = logging.getLogger(__name__)
CALL_KEY = "aistack_call"  # our token in the request's metadata, linking the pre-call hook to the log events
PENDING_TTL = 3600.0  # a reservation the proxy never reported back on is dropped here (the ledger's stale sweep
# releases its money)
SETTLE_RETRIES = (0.2, 1.0, 3.0, 0.0)  # pauses between attempts to write a call's ledger row


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
    """Chat messages to count the prompt from: `messages`, Anthropic's separate `system` as one more message, or
    the Responses API's `input` (a string or a list of items)."""
    msgs = [m for m in data.get("messages") or [] if isinstance(m, dict)]
    raw_input = data.get("input")
    if not msgs and isinstance(raw_input, str):
        msgs = [{"role": "user", "content": raw_input}]
    elif not msgs and isinstance(raw_input, list):
        msgs = [m if isinstance(m, dict) else {"role": "user", "content": str(m)} for m in raw_input]
    system = data.get("system") or data.get("instructions")
    if system:
        text = system if isinstance(system, str) else " ".join(
            b.get("text", "") for b in system if isinstance(b, dict))
        msgs = [{"role": "system", "content": text}, *msgs]
    return msgs


LIMIT_KEYS = ("max_tokens", "max_completion_tokens", "max_output_tokens")


def output_limit(data: dict[str, Any]) -> int:
    """The request's output-token limit; one is set when it has none, so the reserved worst case really bounds the
    call (the embedded gateway does the same). Raises ValueError for a limit that is not a positive integer."""
    for key in LIMIT_KEYS:
        value = data.get(key)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{key} must be a positive integer, got {value!r}")
            return value
    # The Responses API names its limit max_output_tokens; everything else takes max_tokens.
    data["max_output_tokens" if "input" in data and "messages" not in data else "max_tokens"] = DEFAULT_MAX_TOKENS
    return DEFAULT_MAX_TOKENS


# (start, reservation, client, tags, model asked) of a call between its pre-call hook and its log event
_Call = tuple[float, budgets.Reservation | None, str, list[str], str]


class ProxyBudgetHandler(CustomLogger):
    def __init__(self) -> None:
        super().__init__()
        self._gateway: Gateway | None = None
        self._calls: dict[str, _Call] = {}

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
        try:
            max_tokens = output_limit(data)
        except ValueError as exc:
            raise HTTPException(status_code=400, detail=f"refused by the aistack gateway: {exc}") from None
        try:
            gw = await asyncio.to_thread(self.gateway)
            reservation, _ = await asyncio.to_thread(gw.reserve, client, own_tags, gw.config.resolve(model),
                                                     _messages(data), max_tokens, "proxy", model_asked=model)
        except budgets.BudgetExceeded as exc:
            raise HTTPException(status_code=429, detail=f"refused by the aistack budget: {exc}") from None
        except GatewayError as exc:  # e.g. an unpriced model for a budgeted client: refused, nothing sent
            raise HTTPException(status_code=400, detail=f"refused by the aistack gateway: {exc}") from None
        except Exception as exc:  # fail closed: no budget check, no call; the client gets no SQL or paths
            log.exception("aistack budget check failed; call refused")
            raise HTTPException(status_code=503, detail="refused: the aistack budget database is unavailable "
                                f"({type(exc).__name__}); nothing was sent; see the proxy log") from None
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
        slo = kwargs.get("standard_logging_object") or {}
        meta = kwargs.get("litellm_params", {}).get("metadata")
        call = self._take(meta, slo)
        if call is None:  # no reservation of ours (e.g. held longer than PENDING_TTL): still book the spend
            tags = _tags({}, meta if isinstance(meta, dict) else {})
            alias = (slo.get("metadata") or {}).get("user_api_key_alias")
            client = client_of(alias, tags, self.default_client())
            log.warning("a proxy answer without our reservation token: booked to %s without a budget hold", client)
            call = (time.monotonic(), None, client, [t for t in tags if not t.startswith("client:")],
                    str(slo.get("model_group") or slo.get("model") or ""))
        t0, reservation, client, tags, model = call
        usage = (slo.get("metadata") or {}).get("usage_object") or {}
        cache_create = int(usage.get("cache_creation_input_tokens") or 0)
        cache_read = int(usage.get("cache_read_input_tokens") or 0)
        prompt = slo.get("prompt_tokens")
        cost = kwargs.get("response_cost")
        used = slo.get("hidden_params", {}).get("litellm_model_name") or slo.get("model")
        if not cost and not known_price(self.gateway().config, used):
            cost = None  # LiteLLM says 0.0 for a model it cannot price: unknown, so settle charges the worst case
        row = ledger.LedgerRow(
            ts=datetime.now(UTC), client=client, tags=tags, caller="proxy", model_asked=model, model_used=used,
            input_tokens=None if prompt is None else max(0, int(prompt) - cache_create - cache_read),
            output_tokens=slo.get("completion_tokens"), cache_creation_input_tokens=cache_create,
            cache_read_input_tokens=cache_read, cost_usd=None if cost is None else Decimal(str(cost)),
            latency_ms=(time.monotonic() - t0) * 1000, status="ok", request_id=slo.get("id"))
        await self._settle(reservation, row)

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
        await self._settle(reservation, row)

    async def _settle(self, reservation: budgets.Reservation | None, row: ledger.LedgerRow) -> None:
        """Settle and write the row, retrying a busy or briefly unreachable database; LiteLLM swallows what a
        logging hook raises, so a final failure is logged with everything needed to book it by hand."""
        gw = self.gateway()
        for attempt, pause in enumerate(SETTLE_RETRIES):
            try:
                await asyncio.to_thread(budgets.settle, gw.engine, reservation, row, tz=gw.settings.zone)
                return
            except Exception as exc:
                if attempt == len(SETTLE_RETRIES) - 1:
                    log.error("could not write the ledger row for a proxy call (%s: %s); its hold is released by "
                              "the stale sweep, the spend is lost unless booked by hand: %r",
                              type(exc).__name__, exc, row)
                    return
                await asyncio.sleep(pause)

    def _take(self, meta: Any, slo: Any) -> _Call | None:
        token = meta.get(CALL_KEY) if isinstance(meta, dict) else None
        if token is None and isinstance(slo, dict):
            token = (slo.get("metadata") or {}).get(CALL_KEY)
        return self._calls.pop(token, None) if token else None


proxy_handler_instance = ProxyBudgetHandler()
