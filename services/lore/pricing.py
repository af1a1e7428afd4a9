"""LORE's pinned price table and the USD cost of model calls. Never touches the network.

The table (`prices.json`, next to this file) is an extract of LiteLLM's bundled price file in LiteLLM's own field
names, per token in USD. It changes only through `update_prices()`, the service behind the explicit update command,
so a session's cost does not drift between two runs of `aistack lore usage`.

Cost of one call: input × input price + output × output price + cache writes × cache-creation price + cache reads ×
cache-read price, in exact decimal arithmetic. A model with long-context tiers (`*_above_200k_tokens`, and any other
`*_above_<N>k_tokens` the table lists) is billed entirely at the tier's prices once the call's prompt (input + cache
writes + cache reads) exceeds the threshold, as Anthropic, Google and OpenAI bill and as ccusage computes it; a
component the tier does not list keeps its base price (LiteLLM's rule). Prices are never invented: a component with
tokens but no price makes the call unpriced (None).

Model-name resolution, first hit wins (results cached per name, misses included):
    1. the name exactly as given;
    2. its normalised base name: lower case, `[1m]`-style suffix dropped, provider path dropped (`anthropic/`,
       `openai/`, `gemini/`, `vertex_ai/`, `bedrock/us-east-1/` ...), Bedrock `us.anthropic.`-style prefix and
       `-v1:0` suffix dropped, Vertex `@20250929` turned into `-20250929`;
    3. the base name with each provider prefix the table uses (`anthropic/`, `openai/`, `gemini/`);
    4. the date-less alias (`-20250805` or `-2024-08-06` dropped), bare then prefixed. Last resort: a dated snapshot
       can differ in price from its alias, which is why an exact entry always wins;
    5. for Claude models, Bedrock's on-demand entry `anthropic.<name>-v1:0`: LiteLLM 1.106.9 lists some Claude
       models (claude-opus-4-1-20250805, claude-sonnet-4-20250514) only there, at Anthropic's own list prices.
       Region-prefixed entries (`us.`, `eu.`, ...) are not used: some carry a regional surcharge.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import importlib.util
import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from services.lore.model import Call, Usage

DEFAULT_TABLE = Path(__file__).with_name("prices.json")
LITELLM_FILE = "model_prices_and_context_window_backup.json"
SYNTHETIC = "<synthetic>"  # Claude Code's placeholder for locally generated messages: zero usage, never billed
UNKNOWN_MODEL = "<unknown>"  # how a call without a model name is listed among unpriced models

BASE_FIELDS = ("input_cost_per_token", "output_cost_per_token", "cache_creation_input_token_cost",
               "cache_read_input_token_cost")
TIER_RE = re.compile(r"^(?P<base>" + "|".join(BASE_FIELDS) + r")_above_(?P<k>\d+)k_tokens$")
KEPT_MODES = ("chat", "responses")  # LiteLLM files Codex models (gpt-5-codex ...) under "responses"
PROVIDER_PATTERNS = {  # providers LORE imports, and which of their model names are text models
    "anthropic": re.compile(r"^claude-"),
    "openai": re.compile(r"^(?:gpt-|o[134](?:-|$)|codex)"),
    "gemini": re.compile(r"^(?:gemini/)?gemini-"),
    "bedrock_converse": re.compile(r"^anthropic\.claude-[a-z0-9.-]+-v\d+:\d+$"),  # step 5 of the resolution
}
TABLE_PREFIXES = ("anthropic/", "openai/", "gemini/")

_SUFFIX_RE = re.compile(r"\[[^\]]*\]$")  # Claude Code's "[1m]" context marker
_BEDROCK_RE = re.compile(r"^(?:[a-z-]+\.)?anthropic\.")  # us.anthropic., eu.anthropic., global.anthropic., anthropic.
_BEDROCK_VERSION_RE = re.compile(r"-v\d+(?::\d+)?$")
_VERTEX_DATE_RE = re.compile(r"@(\d{8})$")
_DATE_RE = re.compile(r"-(?:\d{8}|\d{4}-\d{2}-\d{2})$")


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per token for each usage component; None = the table lists no price for it."""

    input: Decimal | None = None
    output: Decimal | None = None
    cache_creation: Decimal | None = None
    cache_read: Decimal | None = None

    def merged_over(self, base: Rates) -> Rates:
        """These rates, falling back to `base` for the components this tier does not list."""
        return Rates(*(own if own is not None else b for own, b in zip(self._tuple(), base._tuple(), strict=True)))

    def _tuple(self) -> tuple[Decimal | None, ...]:
        return (self.input, self.output, self.cache_creation, self.cache_read)


@dataclass(frozen=True)
class ModelPrice:
    """One table entry, parsed once. `tiers` ascend by threshold (prompt tokens) and are already merged with base."""

    key: str
    provider: str | None
    base: Rates
    tiers: tuple[tuple[int, Rates], ...] = ()

    def rates_for(self, prompt_tokens: int) -> Rates:
        """The rates for a whole call whose prompt has `prompt_tokens` tokens: the highest tier it exceeds."""
        chosen = self.base
        for threshold, rates in self.tiers:
            if prompt_tokens > threshold:
                chosen = rates
        return chosen


@dataclass
class UpdateReport:
    source: str
    dest: Path
    models: int
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    written: bool = False  # False when the table already held exactly this extract (the file is left untouched)

    def __str__(self) -> str:
        lines = [f"{self.models} models from {self.source} -> {self.dest}"]
        for label, names in (("added", self.added), ("removed", self.removed), ("changed", self.changed)):
            if names:
                lines.append(f"{label} ({len(names)}): {', '.join(names)}")
        lines.append("written: review the diff, then commit it" if self.written else "unchanged: file left as is")
        return "\n".join(lines)


def _dec(value: Any) -> Decimal | None:
    """Exact Decimal from a JSON number (via its shortest repr, so 3e-06 is exactly 0.000003); None if not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        d = Decimal(str(value))
    except ArithmeticError:
        return None
    return d if d.is_finite() else None


def parse_entry(key: str, entry: Mapping[str, Any]) -> ModelPrice:
    base = Rates(*(_dec(entry.get(f)) for f in BASE_FIELDS))
    by_threshold: dict[int, dict[str, Decimal | None]] = {}
    for name, value in entry.items():
        m = TIER_RE.match(name)
        if m:
            by_threshold.setdefault(int(m["k"]) * 1000, {})[m["base"]] = _dec(value)
    tiers: list[tuple[int, Rates]] = []
    below = base
    for threshold in sorted(by_threshold):
        own = Rates(*(by_threshold[threshold].get(f) for f in BASE_FIELDS))
        below = own.merged_over(below)  # a component missing from this tier keeps the next lower tier's price
        tiers.append((threshold, below))
    provider = entry.get("litellm_provider")
    return ModelPrice(key=key, provider=provider if isinstance(provider, str) else None, base=base, tiers=tuple(tiers))


def _base_name(model: str) -> str:
    name = _SUFFIX_RE.sub("", model.strip().lower())
    name = name.rsplit("/", 1)[-1]  # anthropic/, vertex_ai/, bedrock/us-east-1/ ...
    if _BEDROCK_RE.match(name):
        name = _BEDROCK_VERSION_RE.sub("", _BEDROCK_RE.sub("", name))
    name = _VERTEX_DATE_RE.sub(r"-\1", name)
    return name.split("@", 1)[0]  # claude-...@default and the like


def candidate_names(model: str) -> list[str]:
    """Every table key `model` may be listed under, in resolution order (see the module docstring)."""
    base = _base_name(model)
    alias = _DATE_RE.sub("", base)
    names = [model, base, *(p + base for p in TABLE_PREFIXES)]
    if alias != base:
        names += [alias, *(p + alias for p in TABLE_PREFIXES)]
    if base.startswith("claude-"):
        names.append(f"anthropic.{base}-v1:0")
    return list(dict.fromkeys(names))


class PriceTable:
    """A price table in LiteLLM's shape, parsed once; resolution results are cached per model name."""

    def __init__(self, models: Mapping[str, Mapping[str, Any]], meta: Mapping[str, Any] | None = None) -> None:
        self.meta = dict(meta or {})
        self._prices = {k: parse_entry(k, v) for k, v in models.items() if isinstance(v, Mapping)}
        self._resolved: dict[str, ModelPrice | None] = {}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PriceTable:
        """Accepts LORE's `{"_meta": ..., "models": ...}` file shape or a flat LiteLLM-style `{model: entry}` dict."""
        if isinstance(data.get("models"), Mapping):
            return cls(data["models"], data.get("_meta"))
        return cls({k: v for k, v in data.items() if not k.startswith("_") and k != "sample_spec"})

    @classmethod
    def from_path(cls, path: Path) -> PriceTable:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def keys(self) -> list[str]:
        return sorted(self._prices)

    def price(self, model: str | None) -> ModelPrice | None:
        if not model or model == SYNTHETIC:
            return None
        if model not in self._resolved:
            self._resolved[model] = next(
                (self._prices[n] for n in candidate_names(model) if n in self._prices), None)
        return self._resolved[model]

    def cost_exact(self, call_or_usage: Call | Usage, model: str | None = None) -> Decimal | None:
        """USD for one call as an exact Decimal; None when usage is unknown or a needed price is missing."""
        usage, model = _usage_and_model(call_or_usage, model)
        if not usage.known():
            return None
        entry = self.price(model)
        if entry is None:
            return None
        inp, out = usage.input_tokens or 0, usage.output_tokens or 0
        cw, cr = usage.cache_creation_input_tokens or 0, usage.cache_read_input_tokens or 0
        rates = entry.rates_for(inp + cw + cr) if entry.tiers else entry.base
        total = Decimal(0)
        for tokens, rate in ((inp, rates.input), (out, rates.output), (cw, rates.cache_creation),
                             (cr, rates.cache_read)):
            if tokens:
                if rate is None:
                    return None
                total += tokens * rate
        return total

    def cost(self, call_or_usage: Call | Usage, model: str | None = None) -> float | None:
        """USD for one call (`model` defaults to the Call's own model)."""
        exact = self.cost_exact(call_or_usage, model)
        return None if exact is None else float(exact)

    def session_cost_exact(self, calls: Iterable[Call]) -> tuple[Decimal | None, list[str]]:
        total, unpriced, any_known = Decimal(0), set(), False
        for call in calls:
            usage = call.usage
            if not usage.known():
                continue
            tokens = usage.total()
            if tokens == 0 and (call.model is None or call.model == SYNTHETIC):
                continue  # placeholders: zero usage, nothing to price
            any_known = True
            if tokens == 0:
                continue
            c = self.cost_exact(usage, call.model)
            if c is None:
                unpriced.add(call.model or UNKNOWN_MODEL)
            else:
                total += c
        if unpriced:
            return None, sorted(unpriced)
        return (total if any_known else None), []

    def session_cost(self, calls: Iterable[Call]) -> tuple[float | None, list[str]]:
        """(USD, []) for the calls; (None, unpriced models) if any call cannot be priced; (None, []) if no usage."""
        exact, unpriced = self.session_cost_exact(calls)
        return (None if exact is None else float(exact)), unpriced


def _usage_and_model(call_or_usage: Call | Usage, model: str | None) -> tuple[Usage, str | None]:
    if isinstance(call_or_usage, Call):
        return call_or_usage.usage, model if model is not None else call_or_usage.model
    return call_or_usage, model


@functools.cache
def default_table() -> PriceTable:
    """The pinned table, loaded once per process."""
    return PriceTable.from_path(DEFAULT_TABLE)


def price(model: str | None) -> ModelPrice | None:
    return default_table().price(model)


def cost(call_or_usage: Call | Usage, model: str | None = None) -> float | None:
    return default_table().cost(call_or_usage, model)


def session_cost(calls: Iterable[Call]) -> tuple[float | None, list[str]]:
    return default_table().session_cost(calls)


# --- the explicit update: re-extract from a LiteLLM-format file -------------------------------------------------


def litellm_source() -> Path:
    """The installed litellm's bundled price file, found without importing litellm (that import costs seconds)."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("litellm is not installed; pass the LiteLLM price JSON explicitly")
    path = Path(next(iter(spec.submodule_search_locations))) / LITELLM_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found in the installed litellm")
    return path


def _keep(key: str, entry: Any) -> bool:
    if not isinstance(entry, Mapping) or entry.get("mode") not in KEPT_MODES:
        return False
    pattern = PROVIDER_PATTERNS.get(str(entry.get("litellm_provider")))
    return bool(pattern and pattern.match(key))


def _cost_fields(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if (k in BASE_FIELDS or TIER_RE.match(k)) and _dec(v) is not None}


def extract_models(raw: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The entries LORE prices, reduced to cost fields plus `litellm_provider`, sorted by key and by field."""
    out: dict[str, dict[str, Any]] = {}
    for key in sorted(raw):
        entry = raw[key]
        if not _keep(key, entry):
            continue
        costs = _cost_fields(entry)
        if costs:
            out[key] = dict(sorted({**costs, "litellm_provider": entry["litellm_provider"]}.items()))
    return out


def _source_label(source: Path | None) -> str:
    if source is not None:
        return source.name  # the file name only: no local paths in a committed file
    try:
        version = importlib.metadata.version("litellm")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return f"litellm {version} {LITELLM_FILE}"


def _read_existing(dest: Path) -> dict[str, Any]:
    """The current table file, or {} when it is absent or unreadable (the update then rewrites it whole)."""
    try:
        data = json.loads(dest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def render_table(models: Mapping[str, Any], source: str, extracted: str) -> str:
    fields = sorted({f for entry in models.values() for f in entry})
    doc = {"_meta": {"source": source, "extracted": extracted, "fields": fields}, "models": models}
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"  # "_meta" sorts before "models"


def write_atomic(dest: Path, text: str) -> None:
    """Temp file in the same directory, fsync, os.replace: readers see the old table or the new one, never half."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        os.fchmod(fd, dest.stat().st_mode & 0o777 if dest.exists() else 0o644)  # mkstemp's 0600 would stick
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def update_prices(source: Path | None = None, dest: Path = DEFAULT_TABLE) -> UpdateReport:
    """Re-extract the table from a LiteLLM-format JSON file (default: installed litellm's) and report the diff."""
    path = source if source is not None else litellm_source()
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: not a LiteLLM price table (expected a JSON object)")
    new = extract_models(raw)
    old_doc = _read_existing(dest)
    old_models = old_doc.get("models")
    old: dict[str, Any] = old_models if isinstance(old_models, dict) else {}
    label = _source_label(source)
    report = UpdateReport(source=label, dest=dest, models=len(new), added=sorted(new.keys() - old.keys()),
                          removed=sorted(old.keys() - new.keys()),
                          changed=sorted(k for k in new.keys() & old.keys() if new[k] != old[k]))
    if new == old and (old_doc.get("_meta") or {}).get("source") == label:
        return report  # nothing to do: keep the file (and its extraction date) byte for byte
    write_atomic(dest, render_table(new, label, date.today().isoformat()))
    report.written = True
    return report
