"""`aistack lore …` run as a user would: a subprocess with settings from the environment."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.lore_fixtures import CLAUDE_SID, CLIENTS_YAML, FIXTURES, make_home
from tests.test_cli_sentinel import aistack


def setup(tmp: Path) -> dict[str, str]:
    h = make_home(tmp)
    return {"LORE_ROOT": str(h.lore), "CLAUDE_HOME": str(h.claude), "CODEX_HOME": str(h.codex)}


def test_import_search_show_usage_promote(tmp_path: Path) -> None:
    env = setup(tmp_path)
    out = aistack("lore", "import", "--chatgpt", str(FIXTURES / "chatgpt_conversations.json"), "--client", "beta",
                  home=tmp_path, **env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("4 added, 0 updated") and "acme: 2 added" in out.stdout
    out = aistack("lore", "import", "--json", home=tmp_path, **env)
    data = json.loads(out.stdout)
    assert data["added"] == {} and data["skipped_units"] == 2

    out = aistack("lore", "search", "retry", home=tmp_path, **env)
    assert out.returncode == 2 and "--client" in out.stderr  # a search names its clients
    out = aistack("lore", "search", "retry", "--client", "acme", "--json", home=tmp_path, **env)
    hits = json.loads(out.stdout)
    assert [h["key"] for h in hits][:1] == [f"claude_code:{CLAUDE_SID}"] and {h["client"] for h in hits} == {"acme"}
    out = aistack("lore", "search", "autovacuum", "--all-clients", "--json", home=tmp_path, **env)
    assert [h["client"] for h in json.loads(out.stdout)] == ["beta"]

    out = aistack("lore", "show", CLAUDE_SID[:8], home=tmp_path, **env)
    assert out.returncode == 0 and out.stdout.startswith("# Fix flaky retry test in HTTP client")
    assert "**assistant**" in out.stdout and "`Read`" in out.stdout

    out = aistack("lore", "usage", "--by", "model", "--json", home=tmp_path, **env)
    rows = {r["group"]: r for r in json.loads(out.stdout)["rows"]}
    assert rows["claude-sonnet-4-5-20250929"]["output_tokens"] == 458
    assert rows["gpt-5-codex"]["input_tokens"] == 3820
    out = aistack("lore", "usage", "--by", "day", "--tz", "Mars/Olympus", home=tmp_path, **env)
    assert out.returncode == 2 and "time zone" in out.stderr

    out = aistack("lore", "promote", f"claude_code:{CLAUDE_SID}", "--to", "validated", "--by", "bob",
                  home=tmp_path, **env)
    assert out.returncode == 0 and "hypothesis → validated" in out.stdout
    out = aistack("lore", "search", "retry", "--client", "acme", "--state", "validated", "--json", home=tmp_path,
                  **env)
    assert [h["state"] for h in json.loads(out.stdout)] == ["validated"]


def test_export_merge_reindex_and_prices(tmp_path: Path) -> None:
    env = setup(tmp_path)
    aistack("lore", "import", home=tmp_path, **env)
    idx = tmp_path / "a.json"
    out = aistack("lore", "export-index", "-o", str(idx), home=tmp_path, **env)
    assert out.returncode == 0 and "2 session(s)" in out.stdout
    other = json.loads(idx.read_text())
    other["machine"] = "laptop"
    other["sessions"] = [dict(other["sessions"][0], key="codex:from-laptop")]
    (tmp_path / "b.json").write_text(json.dumps(other))
    out = aistack("lore", "merge-index", str(idx), str(tmp_path / "b.json"), home=tmp_path, **env)
    assert len(json.loads(out.stdout)["sessions"]) == 3
    (tmp_path / "bad.json").write_text("{")
    out = aistack("lore", "merge-index", str(tmp_path / "bad.json"), home=tmp_path, **env)
    assert out.returncode == 2 and "bad.json" in out.stderr

    shutil.rmtree(Path(env["LORE_ROOT"]) / ".lore")
    out = aistack("lore", "reindex", home=tmp_path, **env)
    assert out.stdout.strip() == "reindexed 2 session(s)"

    src = tmp_path / "litellm.json"
    src.write_text(json.dumps({"claude-test-1": {"litellm_provider": "anthropic", "mode": "chat",
                                                 "input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06}}))
    table = tmp_path / "prices.json"
    out = aistack("lore", "prices", "update", "--from", str(src), "--table", str(table), home=tmp_path, **env)
    assert out.returncode == 0, out.stderr
    assert "claude-test-1" in json.loads(table.read_text())["models"]
    out = aistack("lore", "clients", home=tmp_path, **env)
    assert "acme: paths ['/home/dev/projects/acme_api.v2']" in out.stdout


def test_a_broken_clients_file_is_one_clear_error(tmp_path: Path) -> None:
    env = setup(tmp_path)
    (Path(env["LORE_ROOT"]) / "clients.yaml").write_text(CLIENTS_YAML + "  Bad Name: {}\n")
    out = aistack("lore", "import", home=tmp_path, **env)
    assert out.returncode == 2 and "Bad Name" in out.stderr and "folder name" in out.stderr
