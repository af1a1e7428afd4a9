"""The one call every programmatic model request goes through: budget first, then LiteLLM, then the ledger.

    gw = Gateway(settings, engine)
    result = await gw.acomplete("acme", [{"role": "user", "content": "…"}], model="local", tags=["triage"])
    result.text, result.cost_usd, result.model_used

Before anything is sent upstream the worst case is reserved against every budget that applies (prompt tokens at
the highest input price along the alias's fallback chain plus `max_tokens` at the highest output price); a call
that would exceed one is refused (`BudgetExceeded`, logged as "refused") and reaches no server. After the call the
reservation settles to LiteLLM's own cost of what was used, and the ledger row is written in the same
transaction. Failures are ledger rows too.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine

from services.settings import Settings

from . import budgets, ledger
from .router import GatewayConfig, build_router, known_price, load_config, prices, prompt_tokens

DEFAULT_MAX_TOKENS = 4096  # a call without max_tokens gets this cap, so that its worst case is bounded


class GatewayError(Exception):
    """The model call failed (every deployment and fallback); the ledger has the row."""


class UnpricedModel(GatewayError):
    """A budgeted call to a model without a price: refused, since its worst case cannot be reserved."""


@dataclass
class CallResult:
    text: str
    model_asked: str
    model_used: str | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: Decimal | None
    latency_ms: float
    request_id: str | None
    reserved_usd: Decimal | None
    response: Any  # LiteLLM's ModelResponse, for callers that need tool calls or choices


def _usage(resp: Any) -> tuple[int | None, int | None, int | None, int | None]:
    u = getattr(resp, "usage", None)
    if u is None:
        return None, None, None, None
    prompt = getattr(u, "prompt_tokens", None)
    out = getattr(u, "completion_tokens", None)
    cc = getattr(u, "cache_creation_input_tokens", None) or 0
    details = getattr(u, "prompt_tokens_details", None)
    cr = getattr(u, "cache_read_input_tokens", None) or (getattr(details, "cached_tokens", None) if details else 0) or 0
    fresh = None if prompt is None else max(0, int(prompt) - int(cc) - int(cr))  # ledger input excludes cache
    return fresh, out, int(cc), int(cr)


def _completion_cost(resp: Any) -> float | None:
    from .router import is_local, litellm_module

    litellm = litellm_module()
    model = _used(resp)
    if is_local(model):
        return 0.0
    try:
        return float(litellm.completion_cost(completion_response=resp, model=model))
    except Exception:  # no price known: the ledger says unknown, not 0
        return None


def _used(resp: Any) -> str | None:
    hidden = getattr(resp, "_hidden_params", None) or {}
    return hidden.get("litellm_model_name") or getattr(resp, "model", None)


@dataclass
class _Call:
    """One call between its reservation and its settlement."""

    client: str
    model: str
    tags: list[str]
    caller: str
    reservation: budgets.Reservation | None = None
    reserved: Decimal = Decimal(0)
    request: dict[str, Any] = field(default_factory=dict)
    t0: float = 0.0


class Gateway:
    def __init__(self, settings: Settings, engine: Engine, config: GatewayConfig | None = None) -> None:
        self.settings = settings
        self.engine = engine
        self.config = config or load_config(settings.gateway_config)
        self._router: Any = None
        self._lock = threading.Lock()

    @property
    def router(self) -> Any:
        with self._lock:
            if self._router is None:
                self._router = build_router(self.config)
            return self._router

    # ---------------------------------------------------------------------------------------------- before

    def worst_case(self, model: str, messages: list[dict[str, Any]], max_tokens: int) -> Decimal | None:
        p = prices(self.config, model)
        if p is None:
            return None
        return p[0] * prompt_tokens(self.config, model, messages) + p[1] * max_tokens

    def reserve(self, client: str, tags: list[str], model: str, messages: list[dict[str, Any]], max_tokens: int,
                caller: str, *, model_asked: str | None = None) -> tuple[budgets.Reservation, Decimal]:
        """Hold the worst case of a call to alias `model` against every budget that applies, or refuse it
        (BudgetExceeded / UnpricedModel, after writing the "refused" ledger row). The proxy callback uses this too."""
        if model not in self.config.aliases():
            raise GatewayError(f"unknown model {model!r}: use one of {', '.join(self.config.aliases())} "
                               f"(the model_name entries in {self.config.path})")
        amount = self.worst_case(model, messages, max_tokens)
        try:
            if amount is None:
                # Without a price the worst case is unknown: a budgeted client is refused rather than risk it.
                limited = [st.budget for st in budgets.status(self.engine, tz=self.settings.zone)
                           if st.budget.client == client and (st.budget.tag is None or st.budget.tag in tags)]
                if limited:
                    raise UnpricedModel(f"{model}: a model on its fallback chain has no price, so the worst case of "
                                        f"this call cannot be reserved against {client}'s budget; add "
                                        f"input_cost_per_token/output_cost_per_token to its model_info in "
                                        f"{self.config.path}")
                amount = Decimal(0)
            return budgets.reserve(self.engine, client, tags, amount, tz=self.settings.zone), amount
        except (budgets.BudgetExceeded, UnpricedModel) as exc:
            budgets.refuse(self.engine, ledger.LedgerRow(
                ts=datetime.now(UTC), client=client, tags=tags, caller=caller, model_asked=model_asked or model,
                model_used=None, status="refused", error=str(exc)))
            raise

    def _settle(self, res: budgets.Reservation | None, client: str, tags: list[str], caller: str, model: str,
                t0: float, resp: Any = None, error: BaseException | None = None) -> ledger.LedgerRow:
        latency = (time.perf_counter() - t0) * 1000
        if error is not None:
            row = ledger.LedgerRow(ts=datetime.now(UTC), client=client, tags=tags, caller=caller, model_asked=model,
                                   model_used=None, cost_usd=Decimal(0), latency_ms=latency, status="error",
                                   error=f"{type(error).__name__}: {error}"[:500])
        else:
            i, o, cc, cr = _usage(resp)
            cost = (getattr(resp, "_hidden_params", None) or {}).get("response_cost")
            if cost is None:  # LiteLLM leaves it out for some providers (Ollama); its price table still knows them
                cost = _completion_cost(resp)
            elif not cost and not known_price(self.config, _used(resp)):
                cost = None  # "0.0" for a model LiteLLM cannot price: unknown, so settle charges the worst case
            row = ledger.LedgerRow(ts=datetime.now(UTC), client=client, tags=tags, caller=caller, model_asked=model,
                                   model_used=_used(resp), input_tokens=i, output_tokens=o,
                                   cache_creation_input_tokens=cc, cache_read_input_tokens=cr,
                                   cost_usd=None if cost is None else Decimal(str(cost)), latency_ms=latency,
                                   status="ok", request_id=getattr(resp, "id", None))
        budgets.settle(self.engine, res, row, tz=self.settings.zone)
        return row

    @staticmethod
    def _result(model: str, resp: Any, row: ledger.LedgerRow, reserved: Decimal) -> CallResult:
        text = ""
        choices = getattr(resp, "choices", None) or []
        if choices:
            text = getattr(getattr(choices[0], "message", None), "content", None) or ""
        return CallResult(text=text, model_asked=model, model_used=row.model_used, input_tokens=row.input_tokens,
                          output_tokens=row.output_tokens, cost_usd=row.cost_usd, latency_ms=row.latency_ms or 0.0,
                          request_id=row.request_id, reserved_usd=reserved,
                          response=resp)

    # ---------------------------------------------------------------------------------------------- calls

    def _start(self, client: str, messages: list[dict[str, Any]], model: str, tags: list[str] | tuple[str, ...],
               max_tokens: int | None, caller: str, kwargs: dict[str, Any]) -> _Call:
        """Reserve the worst case (or refuse) and build the Router's arguments: everything before the request."""
        call = _Call(client=client, model=model, tags=list(tags), caller=caller)
        limit = max_tokens or DEFAULT_MAX_TOKENS
        call.reservation, call.reserved = self.reserve(client, call.tags, model, messages, limit, caller)
        call.request = {"model": model, "messages": messages, "max_tokens": limit,
                        "metadata": {"tags": [f"client:{client}", *call.tags], "caller": caller}, **kwargs}
        call.t0 = time.perf_counter()
        return call

    def _failed(self, call: _Call, exc: Exception) -> GatewayError:
        self._settle(call.reservation, call.client, call.tags, call.caller, call.model, call.t0, error=exc)
        return GatewayError(f"{call.model}: the call failed on every deployment and fallback ({exc})")

    def _answered(self, call: _Call, resp: Any) -> CallResult:
        row = self._settle(call.reservation, call.client, call.tags, call.caller, call.model, call.t0, resp=resp)
        return self._result(call.model, resp, row, call.reserved)

    async def acomplete(self, client: str, messages: list[dict[str, Any]], model: str = "local", *,
                        tags: list[str] | tuple[str, ...] = (), max_tokens: int | None = None, caller: str = "agent",
                        **kwargs: Any) -> CallResult:
        router = await asyncio.to_thread(lambda: self.router) if self._router is None else self._router
        call = self._start(client, messages, model, tags, max_tokens, caller, kwargs)
        try:
            resp = await router.acompletion(**call.request)
        except Exception as exc:
            raise self._failed(call, exc) from exc
        return self._answered(call, resp)

    def complete(self, client: str, messages: list[dict[str, Any]], model: str = "local", *,
                 tags: list[str] | tuple[str, ...] = (), max_tokens: int | None = None, caller: str = "cli",
                 **kwargs: Any) -> CallResult:
        router = self.router
        call = self._start(client, messages, model, tags, max_tokens, caller, kwargs)
        try:
            resp = router.completion(**call.request)
        except Exception as exc:
            raise self._failed(call, exc) from exc
        return self._answered(call, resp)
