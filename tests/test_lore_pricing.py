"""LORE pricing: the README's fixed test price table, long-context tiers, name resolution, the pinned table."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from services.lore import pricing
from services.lore.model import Call, Usage
from services.lore.pricing import DEFAULT_TABLE, PriceTable, candidate_names, extract_models, update_prices

ROOT = Path(__file__).resolve().parents[1]

# /work/shared/fixtures/lore/README.md's fixed test price table, per token (the README gives USD per million tokens).
README_TABLE: dict[str, Any] = {
    "claude-sonnet-4-5-20250929": {"litellm_provider": "anthropic", "input_cost_per_token": 3e-06,
                                   "output_cost_per_token": 1.5e-05, "cache_creation_input_token_cost": 3.75e-06,
                                   "cache_read_input_token_cost": 3e-07},
    "claude-haiku-4-5-20251001": {"litellm_provider": "anthropic", "input_cost_per_token": 1e-06,
                                  "output_cost_per_token": 5e-06, "cache_creation_input_token_cost": 1.25e-06,
                                  "cache_read_input_token_cost": 1e-07},
    "gpt-5-codex": {"litellm_provider": "openai", "input_cost_per_token": 1.25e-06, "output_cost_per_token": 1e-05,
                    "cache_read_input_token_cost": 1.25e-07},
}

SONNET, HAIKU, CODEX = "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001", "gpt-5-codex"
# The fixture's three deduplicated main-chain calls; they add up to the README's main-chain totals.
MAIN_CALLS = [
    Usage(input_tokens=9, output_tokens=187, cache_creation_input_tokens=3120, cache_read_input_tokens=11840),
    Usage(input_tokens=6, output_tokens=240, cache_creation_input_tokens=410, cache_read_input_tokens=14960),
    Usage(input_tokens=4, output_tokens=31, cache_creation_input_tokens=96, cache_read_input_tokens=15370),
]
SIDECHAIN = Usage(input_tokens=420, output_tokens=64, cache_creation_input_tokens=0, cache_read_input_tokens=0)
CODEX_USAGE = Usage(input_tokens=3820, output_tokens=905, cache_creation_input_tokens=0, cache_read_input_tokens=14080)


def call(model: str | None, usage: Usage) -> Call:
    return Call(time="2026-03-14T09:12:05Z", model=model, usage=usage)


@pytest.fixture
def table() -> PriceTable:
    return PriceTable.from_dict({"_meta": {"source": "README test table"}, "models": README_TABLE})


# --- the README's cost facts --------------------------------------------------------------------------------------


def test_main_chain_calls_cost_exactly(table: PriceTable) -> None:
    costs = [table.cost_exact(u, SONNET) for u in MAIN_CALLS]
    assert costs == [Decimal("0.018084"), Decimal("0.0096435"), Decimal("0.005448")]
    assert functools.reduce(Usage.plus, MAIN_CALLS) == Usage(19, 458, 3626, 42170)  # the README's main-chain totals
    total, unpriced = table.session_cost([call(SONNET, u) for u in MAIN_CALLS])
    assert unpriced == []
    assert total is not None and round(total, 10) == 0.0331755


def test_sidechain_session_and_codex_costs(table: PriceTable) -> None:
    assert table.cost(SIDECHAIN, HAIKU) == 0.00074
    calls = [call(SONNET, u) for u in MAIN_CALLS] + [call(HAIKU, SIDECHAIN)]
    assert table.session_cost_exact(calls) == (Decimal("0.0339155"), [])
    assert table.cost(CODEX_USAGE, CODEX) == 0.015585
    assert table.cost(call(CODEX, CODEX_USAGE)) == 0.015585  # a Call brings its own model


def test_unpriced_model_makes_session_unpriced_and_is_listed(table: PriceTable) -> None:
    calls = [call(SONNET, MAIN_CALLS[0]), call("claude-opus-9-20300101", SIDECHAIN), call(None, SIDECHAIN)]
    assert table.cost(SIDECHAIN, "claude-opus-9-20300101") is None
    assert table.session_cost(calls) == (None, ["<unknown>", "claude-opus-9-20300101"])


def test_missing_component_price_is_not_invented(table: PriceTable) -> None:
    # gpt-5-codex lists no cache-creation price: zero such tokens are fine, any such token makes the call unpriced.
    assert table.cost(Usage(100, 10, 0, 0), CODEX) == 0.000225
    assert table.cost(Usage(100, 10, 1, 0), CODEX) is None
    assert table.session_cost([call(CODEX, Usage(100, 10, 1, 0))]) == (None, [CODEX])


def test_placeholders_and_unknown_usage_are_ignored(table: PriceTable) -> None:
    synthetic = call("<synthetic>", Usage(0, 0, 0, 0))
    nameless = call(None, Usage(0, 0, 0, 0))
    assert table.session_cost([synthetic, nameless, call(HAIKU, SIDECHAIN)]) == (0.00074, [])
    assert table.session_cost([call(None, Usage()), call("gemini-app", Usage())]) == (None, [])  # Gemini Takeout
    assert table.session_cost([]) == (None, [])
    assert table.cost(Usage(), SONNET) is None  # unknown is not zero
    assert table.session_cost([call(SONNET, Usage(0, 0, 0, 0))]) == (0.0, [])


# --- long-context tiers -------------------------------------------------------------------------------------------

TIERED = {
    "long-model": {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06,
                   "cache_creation_input_token_cost": 3e-06, "cache_read_input_token_cost": 4e-07,
                   "input_cost_per_token_above_200k_tokens": 1e-05, "output_cost_per_token_above_200k_tokens": 2e-05,
                   "cache_read_input_token_cost_above_200k_tokens": 4e-06},  # no tier cache-creation price
    "two-tiers": {"input_cost_per_token": 1e-06, "output_cost_per_token": 1e-06,
                  "input_cost_per_token_above_128k_tokens": 2e-06, "output_cost_per_token_above_128k_tokens": 2e-06,
                  "input_cost_per_token_above_272k_tokens": 4e-06},
}


def test_tier_switches_whole_call_above_200k() -> None:
    t = PriceTable.from_dict(TIERED)
    at = Usage(input_tokens=100_000, output_tokens=1000, cache_creation_input_tokens=0, cache_read_input_tokens=100_000)
    assert t.cost_exact(at, "long-model") == Decimal("0.1") + Decimal("0.002") + Decimal("0.04")  # 200k: base prices
    above = Usage(input_tokens=100_001, output_tokens=1000, cache_creation_input_tokens=0,
                  cache_read_input_tokens=100_000)
    # one token more: every component at the tier price, output included
    assert t.cost_exact(above, "long-model") == Decimal("1.00001") + Decimal("0.02") + Decimal("0.4")
    # the prompt counts cache writes too; a component the tier does not list keeps its base price
    writes = Usage(input_tokens=1, output_tokens=0, cache_creation_input_tokens=200_000, cache_read_input_tokens=0)
    assert t.cost_exact(writes, "long-model") == Decimal("0.00001") + Decimal("0.6")


def test_highest_exceeded_tier_wins_and_inherits_lower_tier() -> None:
    t = PriceTable.from_dict(TIERED)
    assert t.cost_exact(Usage(128_000, 1000, 0, 0), "two-tiers") == Decimal("0.129")
    assert t.cost_exact(Usage(128_001, 1000, 0, 0), "two-tiers") == Decimal("0.258002")
    # above 272k: input at the 272k price, output has no 272k price and keeps the 128k one
    assert t.cost_exact(Usage(300_000, 1000, 0, 0), "two-tiers") == Decimal("1.2") + Decimal("0.002")


# --- name resolution ----------------------------------------------------------------------------------------------

NAMES_TABLE = {
    "claude-sonnet-4-5-20250929": {"litellm_provider": "anthropic", "input_cost_per_token": 3e-06},
    "claude-opus-4-1": {"litellm_provider": "anthropic", "input_cost_per_token": 1.5e-05},
    "anthropic/claude-opus-4-1-20250805": {"litellm_provider": "anthropic", "input_cost_per_token": 1.6e-05},
    "anthropic/claude-haiku-4-5-20251001": {"litellm_provider": "anthropic", "input_cost_per_token": 1e-06},
    "gpt-4o": {"litellm_provider": "openai", "input_cost_per_token": 2.5e-06},
    "gpt-4o-2024-05-13": {"litellm_provider": "openai", "input_cost_per_token": 5e-06},
    "gemini/gemini-2.5-pro": {"litellm_provider": "gemini", "input_cost_per_token": 1.25e-06},
    "us.anthropic.claude-sonnet-4-20250514-v1:0": {"litellm_provider": "bedrock", "input_cost_per_token": 3e-06},
}


@pytest.mark.parametrize(("model", "key"), [
    ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20250929"),  # exact
    ("anthropic/claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20250929"),  # provider prefix stripped
    ("bedrock/us-east-1/claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20250929"),
    ("claude-haiku-4-5-20251001", "anthropic/claude-haiku-4-5-20251001"),  # provider prefix added
    ("claude-opus-4-1-20250805", "anthropic/claude-opus-4-1-20250805"),  # a dated entry beats the alias
    ("claude-opus-4-1-20990101", "claude-opus-4-1"),  # date-less alias
    ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5-20250929"),  # Bedrock inference profile
    ("anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5-20250929"),
    ("us.anthropic.claude-sonnet-4-20250514-v1:0", "us.anthropic.claude-sonnet-4-20250514-v1:0"),  # exact first
    ("claude-sonnet-4-5@20250929", "claude-sonnet-4-5-20250929"),  # Vertex AI
    ("vertex_ai/gemini-2.5-pro", "gemini/gemini-2.5-pro"),
    ("gemini-2.5-pro", "gemini/gemini-2.5-pro"),
    ("Claude-Sonnet-4-5-20250929[1m]", "claude-sonnet-4-5-20250929"),
    ("openai/gpt-4o", "gpt-4o"),
    ("gpt-4o-2024-08-06", "gpt-4o"),  # OpenAI-style date
    ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),  # ... but a priced snapshot keeps its own price
])
def test_name_resolution(model: str, key: str) -> None:
    found = PriceTable.from_dict(NAMES_TABLE).price(model)
    assert found is not None and found.key == key


@pytest.mark.parametrize("model", ["<synthetic>", None, "", "claude-opus-9", "mistral-large", "gemini-3-unknown"])
def test_unresolvable_names(model: str | None) -> None:
    assert PriceTable.from_dict(NAMES_TABLE).price(model) is None


def test_resolution_is_cached_and_order_documented() -> None:
    t = PriceTable.from_dict(NAMES_TABLE)
    first = t.price("us.anthropic.claude-sonnet-4-5-20250929-v1:0")
    assert first is t.price("us.anthropic.claude-sonnet-4-5-20250929-v1:0")
    assert candidate_names("anthropic/claude-opus-4-1-20250805") == [
        "anthropic/claude-opus-4-1-20250805", "claude-opus-4-1-20250805", "openai/claude-opus-4-1-20250805",
        "gemini/claude-opus-4-1-20250805", "claude-opus-4-1", "anthropic/claude-opus-4-1", "openai/claude-opus-4-1",
        "gemini/claude-opus-4-1", "anthropic.claude-opus-4-1-20250805-v1:0"]


# --- update_prices ------------------------------------------------------------------------------------------------

def fake_litellm() -> dict[str, Any]:
    return {
        "sample_spec": {"input_cost_per_token": 0.0, "litellm_provider": "one of ...", "mode": "one of: chat"},
        "claude-sonnet-4-5": {"litellm_provider": "anthropic", "mode": "chat", "input_cost_per_token": 3e-06,
                              "output_cost_per_token": 1.5e-05, "cache_creation_input_token_cost": 3.75e-06,
                              "cache_creation_input_token_cost_above_1hr": 6e-06, "max_tokens": 64000,
                              "supports_vision": True, "input_cost_per_token_batches": 1.5e-06},
        "gpt-5-codex": {"litellm_provider": "openai", "mode": "responses", "input_cost_per_token": 1.25e-06,
                        "output_cost_per_token": 1e-05},
        "o3": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 2e-06},
        "gemini/gemini-2.5-pro": {"litellm_provider": "gemini", "mode": "chat", "input_cost_per_token": 1.25e-06,
                                  "input_cost_per_token_above_200k_tokens": 2.5e-06,
                                  "input_cost_per_token_above_200k_tokens_priority": 4.5e-06},
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0": {"litellm_provider": "bedrock_converse", "mode": "chat",
                                                         "input_cost_per_token": 3.3e-06},  # regional: not kept
        "text-embedding-3-small": {"litellm_provider": "openai", "mode": "embedding", "input_cost_per_token": 2e-08},
        "gpt-image-1": {"litellm_provider": "openai", "mode": "image_generation", "input_cost_per_token": 5e-06},
        "gemini/gemma-3-27b-it": {"litellm_provider": "gemini", "mode": "chat", "input_cost_per_token": 1e-07},
        "mistral-large": {"litellm_provider": "mistral", "mode": "chat", "input_cost_per_token": 2e-06},
        "gpt-5-free": {"litellm_provider": "openai", "mode": "chat", "max_tokens": 1000},  # no price at all
    }


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_update_extracts_only_lore_models_and_cost_fields(tmp_path: Path) -> None:
    src, dest = write_json(tmp_path / "litellm.json", fake_litellm()), tmp_path / "out" / "prices.json"
    report = update_prices(src, dest)
    assert report.written and report.models == 4 and report.removed == [] and report.changed == []
    assert report.added == ["claude-sonnet-4-5", "gemini/gemini-2.5-pro", "gpt-5-codex", "o3"]
    doc = json.loads(dest.read_text())
    assert list(doc) == ["_meta", "models"]
    assert doc["_meta"]["source"] == "litellm.json"
    assert doc["models"]["claude-sonnet-4-5"] == {
        "cache_creation_input_token_cost": 3.75e-06, "input_cost_per_token": 3e-06, "litellm_provider": "anthropic",
        "output_cost_per_token": 1.5e-05}
    assert doc["models"]["gemini/gemini-2.5-pro"] == {
        "input_cost_per_token": 1.25e-06, "input_cost_per_token_above_200k_tokens": 2.5e-06,
        "litellm_provider": "gemini"}
    assert "litellm_provider" in doc["_meta"]["fields"]
    # stable, sorted output: the file is exactly its own canonical rendering
    assert dest.read_text() == json.dumps(doc, indent=2, sort_keys=True) + "\n"
    assert PriceTable.from_path(dest).cost(Usage(1_000_000, 0, 0, 0), "gpt-5-codex") == 1.25
    assert dest.stat().st_mode & 0o777 == 0o644  # a committed file, not mkstemp's private 0600
    assert "added (4): claude-sonnet-4-5, gemini/gemini-2.5-pro, gpt-5-codex, o3" in str(report)


def test_update_reports_diff_and_leaves_unchanged_file_alone(tmp_path: Path) -> None:
    src, dest = write_json(tmp_path / "litellm.json", fake_litellm()), tmp_path / "prices.json"
    update_prices(src, dest)
    before = dest.read_bytes()
    os.utime(dest, (0, 0))
    again = update_prices(src, dest)
    assert (again.written, again.added, again.removed, again.changed) == (False, [], [], [])
    assert dest.read_bytes() == before and dest.stat().st_mtime == 0

    raw = fake_litellm()
    del raw["o3"]
    raw["gpt-5-codex"]["output_cost_per_token"] = 1.2e-05
    raw["claude-opus-4-5"] = {"litellm_provider": "anthropic", "mode": "chat", "input_cost_per_token": 5e-06}
    report = update_prices(write_json(src, raw), dest)
    assert (report.added, report.removed, report.changed) == (["claude-opus-4-5"], ["o3"], ["gpt-5-codex"])
    assert report.written and sorted(json.loads(dest.read_text())["models"]) == [
        "claude-opus-4-5", "claude-sonnet-4-5", "gemini/gemini-2.5-pro", "gpt-5-codex"]


def test_update_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src, dest = write_json(tmp_path / "litellm.json", fake_litellm()), tmp_path / "prices.json"
    dest.write_text("old table\n")

    def boom(a: object, b: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(pricing.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        update_prices(src, dest)
    assert dest.read_text() == "old table\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["litellm.json", "prices.json"]  # no temp file left
    monkeypatch.undo()
    assert update_prices(src, dest).added == ["claude-sonnet-4-5", "gemini/gemini-2.5-pro", "gpt-5-codex", "o3"]


# --- the pinned table ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pinned() -> PriceTable:
    return PriceTable.from_path(DEFAULT_TABLE)


def test_pinned_table_is_canonical_and_current() -> None:
    text = DEFAULT_TABLE.read_text(encoding="utf-8")
    doc = json.loads(text)
    assert doc["_meta"]["source"] == "litellm 1.106.9 model_prices_and_context_window_backup.json"
    assert text == json.dumps(doc, indent=2, sort_keys=True) + "\n"
    assert {e["litellm_provider"] for e in doc["models"].values()} == {"anthropic", "openai", "gemini",
                                                                      "bedrock_converse"}
    # the pinned file is exactly what the installed (pinned) litellm's bundled file yields today
    raw = json.loads(pricing.litellm_source().read_text(encoding="utf-8"))
    assert extract_models(raw) == doc["models"]


def per_mtok(entry: Any) -> tuple[Decimal | None, ...]:
    return tuple(None if r is None else r * 1_000_000 for r in (entry.base.input, entry.base.output,
                                                               entry.base.cache_creation, entry.base.cache_read))


@pytest.mark.parametrize(("model", "key", "prices"), [
    ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20250929", ("3", "15", "3.75", "0.3")),
    ("claude-opus-4-5-20251101", "claude-opus-4-5-20251101", ("5", "25", "6.25", "0.5")),
    ("claude-haiku-4-5-20251001", "claude-haiku-4-5-20251001", ("1", "5", "1.25", "0.1")),
    ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5-20250929", ("3", "15", "3.75", "0.3")),
    ("gpt-5-codex", "gpt-5-codex", ("1.25", "10", None, "0.125")),  # LiteLLM files it under mode "responses"
    ("gpt-4o", "gpt-4o", ("2.5", "10", None, "1.25")),
    ("o3", "o3", ("2", "8", None, "0.5")),
    ("gemini-2.5-pro", "gemini/gemini-2.5-pro", ("1.25", "10", None, "0.125")),
])
def test_pinned_table_prices_real_models(pinned: PriceTable, model: str, key: str, prices: tuple[str | None]) -> None:
    entry = pinned.price(model)
    assert entry is not None and entry.key == key
    assert per_mtok(entry) == tuple(None if p is None else Decimal(p) for p in prices)


@pytest.mark.parametrize(("model", "prices"), [("claude-opus-4-1-20250805", ("15", "75", "18.75", "1.5")),
                                               ("claude-sonnet-4-20250514", ("3", "15", "3.75", "0.3"))])
def test_claude_models_litellm_lists_only_under_bedrock_are_priced_from_its_base_entry(
        pinned: PriceTable, model: str, prices: tuple[str, ...]) -> None:
    # litellm 1.106.9 lists them only as Bedrock entries; the region-less `anthropic.<model>-v1:0` one is at
    # Anthropic's list price (resolution step 5).
    entry = pinned.price(model)
    assert entry is not None and entry.key == f"anthropic.{model}-v1:0"
    assert per_mtok(entry) == tuple(Decimal(p) for p in prices)


def test_pinned_table_agrees_with_readme_fixture_costs(pinned: PriceTable) -> None:
    calls = [call(SONNET, u) for u in MAIN_CALLS] + [call(HAIKU, SIDECHAIN), call(CODEX, CODEX_USAGE)]
    assert pinned.session_cost_exact(calls) == (Decimal("0.0339155") + Decimal("0.015585"), [])
    gemini = pinned.price("gemini-2.5-pro")
    assert gemini is not None and [threshold for threshold, _ in gemini.tiers] == [200_000]


def test_pricing_does_not_import_litellm(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from services.lore import pricing\n"
        "from services.lore.model import Usage\n"
        "assert pricing.cost(Usage(1, 1, 0, 0), 'claude-sonnet-4-5-20250929') == 0.000018\n"
        f"pricing.update_prices(dest=Path({str(tmp_path / 'p.json')!r}))\n"
        "print(sorted(m for m in sys.modules if m == 'litellm' or m.startswith('litellm.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
