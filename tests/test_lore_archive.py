"""LORE end to end below the CLI: real importers, real git repositories per client, the real SQLite index."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from services.lore import archive, index, run, yamlio
from services.lore import search as search_mod
from services.lore import usage as usage_mod
from tests.lore_fixtures import CLAUDE_SID, CODEX_SID, FIXTURES, ROOT, LoreHome, generate, make_home


@pytest.fixture
def home(tmp_path: Path) -> LoreHome:
    return make_home(tmp_path)


def load(path: Path) -> dict[str, Any]:
    doc = yamlio.load(path.read_bytes())
    assert isinstance(doc, dict)
    return doc


def one(h: LoreHome, client: str, platform: str) -> dict[str, Any]:
    files = [f for f in h.yaml_files(client) if f"/sessions/{platform}/" in str(f)]
    assert len(files) == 1, files
    return load(files[0])


# ------------------------------------------------------------------------------------------------ archive shape

def test_fixtures_land_in_the_right_client_repositories_as_canonical_yaml(home: LoreHome) -> None:
    s = home.run()
    assert s.errors == [] and dict(s.added) == {"acme": 2}
    files = [str(f.relative_to(home.lore / "acme")) for f in home.yaml_files("acme")]
    assert files == ["sessions/claude_code/2026/03/2026-03-14_7f3c9a2e_acme-api-v2.yaml",
                     "sessions/codex/2026/03/2026-03-15_0195a3c4_acme-api-v2.yaml"]
    doc = one(home, "acme", "claude_code")
    assert doc["schema"] == "lore.session/v1" and doc["key"] == f"claude_code:{CLAUDE_SID}"
    assert doc["title"] == "Fix flaky retry test in HTTP client"
    assert doc["project"] == {"cwd": "/home/dev/projects/acme_api.v2", "git_branch": "fix/retry-flake",
                              "git_remote": None}
    assert (doc["started"], doc["ended"]) == ("2026-03-14T09:12:03.118Z", "2026-03-14T09:15:05.120Z")
    assert doc["usage"] == {"input_tokens": 439, "output_tokens": 522, "cache_creation_input_tokens": 3626,
                            "cache_read_input_tokens": 42170}
    assert doc["cost_usd"] == pytest.approx(0.0339155, abs=1e-12) and doc["unpriced_models"] == []
    assert set(doc["models"]) == {"claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"}
    assert doc["knowledge"]["state"] == "hypothesis"
    sec = doc["security"]
    assert (sec["client"], sec["access_level"], sec["data_classification"]) == (
        "acme", "confidential", "client-confidential")
    assert sec["tool_calls_blocked"] == 0 and sec["adverse_events"] == []
    src = doc["source"]
    assert src["importer"].startswith("claude_code/") and src["files"][0]["sha256"]
    for m in doc["messages"]:
        assert m["hash"] == archive.content_hash(m["content"]) and m["role"] in ("user", "assistant", "system")
    codex = one(home, "acme", "codex")
    assert codex["usage"] == {"input_tokens": 3820, "output_tokens": 905, "cache_creation_input_tokens": 0,
                              "cache_read_input_tokens": 14080}
    assert codex["cost_usd"] == pytest.approx(0.015585, abs=1e-12)
    log = home.git("acme", "log", "--format=%s")
    assert log.strip() == "lore import: 2 added, 0 updated"


def test_exports_go_to_the_named_client_and_unknown_tokens_stay_unknown(home: LoreHome) -> None:
    s = home.run([("chatgpt", FIXTURES / "chatgpt_conversations.json"),
                  ("gemini", FIXTURES / "gemini_takeout.json")], client="beta")
    assert s.errors == [] and s.added["beta"] == 4
    gem = [load(f) for f in home.yaml_files("beta") if "/gemini/" in str(f)]
    assert len(gem) == 2
    for d in gem:
        assert d["cost_usd"] is None and d["calls"] == []
        assert set(d["usage"].values()) == {None}  # unknown, never 0


def test_unpriced_models_make_the_cost_unknown_and_are_listed(home: LoreHome) -> None:
    from services.lore.pricing import PriceTable

    prices = PriceTable.from_dict({"models": {"claude-sonnet-4-5-20250929": {
        "input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05, "cache_creation_input_token_cost": 3.75e-06,
        "cache_read_input_token_cost": 3e-07}}})
    run.run_import(home.env(prices), home.homes())
    doc = one(home, "acme", "claude_code")
    assert doc["cost_usd"] is None and doc["unpriced_models"] == ["claude-haiku-4-5-20251001"]


# ------------------------------------------------------------------------------------------------ idempotence

def test_reimporting_unchanged_sources_changes_nothing(home: LoreHome) -> None:
    home.run()
    before = home.git("acme", "rev-parse", "HEAD")
    s = home.run()
    assert sum(s.added.values()) == sum(s.updated.values()) == 0 and s.skipped_units == 2
    assert home.git("acme", "status", "--porcelain") == ""
    assert home.git("acme", "rev-parse", "HEAD") == before


def test_the_same_sources_into_a_fresh_archive_give_identical_bytes(home: LoreHome, tmp_path: Path) -> None:
    home.run()
    other = tmp_path / "other-lore"
    other.mkdir()
    (other / "clients.yaml").write_bytes((home.lore / "clients.yaml").read_bytes())
    run.run_import(run.make_env(other, home.tmp / "redaction.key", prices=home.env().prices), home.homes())
    mine = home.yaml_files("acme")
    theirs = sorted((other / "acme" / "sessions").rglob("*.yaml"))
    assert [f.relative_to(home.lore) for f in mine] == [f.relative_to(other) for f in theirs]
    for fa, fb in zip(mine, theirs, strict=True):
        assert fa.read_bytes() == fb.read_bytes()


def test_an_appended_session_is_read_from_where_the_last_import_stopped(home: LoreHome) -> None:
    lines = home.claude_file.read_bytes().splitlines(keepends=True)
    home.claude_file.write_bytes(b"".join(lines[:7]))
    home.run()
    first = one(home, "acme", "claude_code")
    assert first["usage"]["output_tokens"] == 187 + 240  # two calls so far (the streamed one counted once)
    rest = b"".join(lines[7:])
    with open(home.claude_file, "ab") as fh:
        fh.write(rest)
    s = home.run()
    assert s.bytes_read == len(rest)  # only the appended bytes were read
    assert dict(s.updated) == {"acme": 1} and not s.added
    doc = one(home, "acme", "claude_code")
    assert doc["usage"]["output_tokens"] == 522 and doc["usage"]["input_tokens"] == 439
    ids = [m["id"] for m in doc["messages"]]
    assert len(ids) == len(set(ids))  # merged by id: nothing twice
    assert home.git("acme", "log", "-1", "--format=%s").strip() == "lore import: 0 added, 1 updated"
    # And the whole file imported at once gives the same document.
    fresh = make_home(home.tmp / "fresh")
    (fresh.tmp / "redaction.key").write_bytes((home.tmp / "redaction.key").read_bytes())
    fresh.run()
    assert one(fresh, "acme", "claude_code")["usage"] == doc["usage"]
    assert [m["id"] for m in one(fresh, "acme", "claude_code")["messages"]] == ids


def test_a_deleted_source_never_removes_an_archived_session(home: LoreHome) -> None:
    home.run()
    home.claude_file.unlink()
    s = home.run()
    assert s.errors == []
    assert len(home.yaml_files("acme")) == 2 and home.git("acme", "status", "--porcelain") == ""


# ------------------------------------------------------------------------------------------------ secrets

def _secret() -> str:
    rnd = random.Random(5)
    return "sk-ant-api03-" + "".join(rnd.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
                                     for _ in range(60))


def test_secrets_are_redacted_before_anything_reaches_the_repository(home: LoreHome) -> None:
    secret = _secret()
    line = json.loads(home.claude_file.read_text().splitlines()[10])
    line["message"]["content"] = f"use ANTHROPIC_API_KEY={secret} for the staging run"
    with open(home.claude_file, "a") as fh:
        fh.write(json.dumps(line | {"uuid": "c0de0099-1111-4aaa-8bbb-000000000099"}) + "\n")
    home.run()
    doc = one(home, "acme", "claude_code")
    assert doc["security"]["redactions"]
    blob = "".join(p.read_text() for p in (home.lore / "acme").rglob("*") if p.is_file() and ".git/" not in str(p))
    assert secret not in blob and "[REDACTED:" in blob
    objects = subprocess.run(["git", "-C", str(home.lore / "acme"), "log", "-p", "--all"], capture_output=True,
                             text=True, check=True).stdout
    assert secret not in objects
    assert secret not in (home.lore / ".lore" / "index.sqlite").read_bytes().decode("latin-1")


def test_the_scan_refuses_to_write_what_redaction_missed(home: LoreHome, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = _secret()
    line = json.loads(home.claude_file.read_text().splitlines()[10])
    line["message"]["content"] = f"key {secret}"
    with open(home.claude_file, "a") as fh:
        fh.write(json.dumps(line | {"uuid": "c0de0099-1111-4aaa-8bbb-000000000099"}) + "\n")
    env = home.env()
    monkeypatch.setattr(env.redactor, "walk", lambda obj: obj)  # a redactor with a hole in it
    s = run.run_import(env, home.homes())
    assert any("secret-shaped" in e for e in s.errors)
    assert not [f for f in home.yaml_files("acme") if "claude_code" in str(f)]
    assert s.added["acme"] == 1  # the Codex session is unaffected


# ------------------------------------------------------------------------------------------------ bad input

def test_malformed_lines_and_invalid_utf8_are_skipped_and_counted(home: LoreHome) -> None:
    with open(home.claude_file, "ab") as fh:
        fh.write(b'{"type": "user", "broken\n')
        fh.write(b'{"parentUuid":null,"isSidechain":false,"type":"user","sessionId":"' + CLAUDE_SID.encode()
                 + b'","uuid":"c0de00aa-1111-4aaa-8bbb-0000000000aa","timestamp":"2026-03-14T09:16:00.000Z",'
                 b'"message":{"role":"user","content":"caf\xe9 au lait"}}\n')
    s = home.run()
    assert len(s.bad_lines) == 1 and s.bad_lines[0].startswith(f"{home.claude_file}:13")
    assert s.replaced_utf8 == 1 and s.errors == []
    assert "caf\ufffd au lait" in (home.yaml_files("acme")[0]).read_text()


def test_a_truncated_export_gives_one_clear_error_and_the_rest_still_imports(home: LoreHome) -> None:
    cut = home.tmp / "conversations.json"
    cut.write_bytes((FIXTURES / "chatgpt_conversations.json").read_bytes()[:3000])
    s = home.run([("chatgpt", cut), ("gemini", FIXTURES / "gemini_takeout.json")], client="beta")
    assert len(s.errors) == 1 and str(cut) in s.errors[0]
    assert s.added["acme"] == 2 and s.added["beta"] == 2


def test_a_killed_import_leaves_no_half_file_and_the_next_run_finishes_without_duplicates(tmp_path: Path) -> None:
    corpus = generate(tmp_path / "corpus", sessions=30, mean_kb=60, seed=11)
    lore = tmp_path / "lore"
    lore.mkdir()
    code = ("import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]);"
            "from services.lore import run; from tests.lore_fixtures import TEST_PRICES;"
            "e = run.make_env(Path(sys.argv[2]), Path(sys.argv[3]), prices=TEST_PRICES);"
            "run.run_import(e, {'claude_code': Path(sys.argv[4])})")
    args = [sys.executable, "-c", code, str(ROOT), str(lore), str(tmp_path / "key"), str(corpus)]
    for delay in (0.8, 1.6, 2.4):
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        for f in (lore / "internal").rglob("*.yaml") if (lore / "internal").exists() else []:
            assert isinstance(load(f), dict)  # every visible file is whole
    subprocess.run(args, check=True)
    docs = [load(f) for f in (lore / "internal").rglob("*.yaml")]
    keys = [d["key"] for d in docs]
    expected = json.loads((corpus / "expected.json").read_text())
    assert sorted(keys) == sorted(f"claude_code:{sid}" for sid in expected["sessions"])
    assert not [p for p in (lore / "internal").rglob(f"*{archive.TMP_MARK}*")]
    for d in docs:
        e = expected["sessions"][d["native_id"]]
        assert (d["usage"]["input_tokens"], d["usage"]["output_tokens"]) == (e["input"], e["output"])
        ids = [m["id"] for m in d["messages"]]
        assert len(ids) == len(set(ids))
    st = subprocess.run(["git", "-C", str(lore / "internal"), "status", "--porcelain"], capture_output=True,
                        text=True, check=True).stdout
    assert st == ""


# ------------------------------------------------------------------------------------------------ SENTINEL

def test_sentinel_blocks_for_the_session_are_counted_as_adverse_events(home: LoreHome) -> None:
    home.audit.mkdir()
    ev = {"ts": "2026-03-14T09:13:00.000Z", "event": "pre", "decision": "block", "rule_id": "rm-recursive-force",
          "session_id": CLAUDE_SID, "tool_use_id": "toolu_x"}
    other = ev | {"session_id": "someone-else"}
    (home.audit / "2026-03-14.jsonl").write_text(json.dumps(ev) + "\n" + json.dumps(other) + "\n")
    home.run()
    sec = one(home, "acme", "claude_code")["security"]
    assert sec["tool_calls_blocked"] == 1
    assert sec["adverse_events"] == [{"time": "2026-03-14T09:13:00.000Z", "kind": "sentinel-block",
                                      "rule": "rm-recursive-force", "tool_use_id": "toolu_x"}]


# ------------------------------------------------------------------------------------------------ search, usage

def test_search_is_isolated_per_client_and_groups_by_session(home: LoreHome) -> None:
    home.run([("chatgpt", FIXTURES / "chatgpt_conversations.json")], client="beta")
    conn = index.connect(home.lore)
    hits = search_mod.search(conn, "fake clock", ["acme"])
    assert [h.key for h in hits] == [f"claude_code:{CLAUDE_SID}"]
    assert "«" in hits[0].snippet
    assert search_mod.search(conn, "fake clock", ["beta"]) == []  # another client's sessions never show
    assert [h.client for h in search_mod.search(conn, "autovacuum", ["beta"])] == ["beta"]
    assert search_mod.search(conn, "autovacuum", ["acme"]) == []
    with pytest.raises(search_mod.SearchError):
        search_mod.search(conn, "autovacuum", [])
    # identifiers and paths through the trigram index
    code_hits = search_mod.search(conn, "test_client.py", ["acme"])
    assert [h.key for h in code_hits] == [f"claude_code:{CLAUDE_SID}"]
    assert search_mod.search(conn, "test_client.py", ["acme"], search_mod.Filters(platform="codex")) == []


def test_usage_groups_and_reindex_rebuilds_the_same_answers(home: LoreHome) -> None:
    from zoneinfo import ZoneInfo

    home.run()
    conn = index.connect(home.lore)
    by_model = {r.group: r for r in usage_mod.report(conn, "model")}
    assert by_model["claude-haiku-4-5-20251001"].input_tokens == 420
    assert by_model["gpt-5-codex"].cache_read_input_tokens == 14080
    assert [r.group for r in usage_mod.report(conn, "day")] == ["2026-03-14", "2026-03-15"]
    days = [r.group for r in usage_mod.report(conn, "day", tz=ZoneInfo("Pacific/Kiritimati"))]  # UTC+14
    assert days == ["2026-03-14", "2026-03-16"]  # the Codex session ran after local midnight there
    tot = usage_mod.total(usage_mod.report(conn, "client"))
    assert tot.cost_usd == pytest.approx(0.0339155 + 0.015585, abs=1e-9)
    before = [r.to_dict() for r in usage_mod.report(conn, "session")]
    hits = [h.key for h in search_mod.search(conn, "retry", ["acme"])]
    conn.execute("DELETE FROM calls")
    conn.close()
    from services.lore import service
    from services.settings import load_settings

    s = load_settings(env_file=None, lore_root=home.lore, aistack_home=home.tmp)
    assert service.reindex(s) == 2
    conn = index.connect(home.lore)
    assert [r.to_dict() for r in usage_mod.report(conn, "session")] == before
    assert [h.key for h in search_mod.search(conn, "retry", ["acme"])] == hits


def test_generated_corpus_totals_match_the_generators_expected_sums(tmp_path: Path) -> None:
    corpus = generate(tmp_path / "corpus", sessions=25, mean_kb=40, seed=3)
    h = LoreHome(tmp_path)
    (tmp_path / "lore").mkdir()
    s = run.run_import(h.env(), {"claude_code": corpus})
    expected = json.loads((corpus / "expected.json").read_text())
    assert len(s.bad_lines) == expected.get("bad_lines", len(s.bad_lines))
    conn = index.connect(h.lore)
    rows = {r.group.split(":", 1)[1]: r for r in usage_mod.report(conn, "session")}
    for sid, e in expected["sessions"].items():
        r = rows[sid]
        assert (r.input_tokens, r.output_tokens, r.cache_creation_input_tokens, r.cache_read_input_tokens) == (
            e["input"], e["output"], e["cache_creation"], e["cache_read"]), sid
    t = expected["totals"]
    tot = usage_mod.total(list(rows.values()))
    assert (tot.input_tokens, tot.output_tokens, tot.cache_creation_input_tokens, tot.cache_read_input_tokens) == (
        t["input"], t["output"], t["cache_creation"], t["cache_read"])


# ------------------------------------------------------------------------------------------------ knowledge

def test_promote_records_the_transition_as_a_commit(home: LoreHome) -> None:
    from services.lore import service
    from services.settings import load_settings

    home.run()
    s = load_settings(env_file=None, lore_root=home.lore, aistack_home=home.tmp)
    k = service.promote(s, f"claude_code:{CLAUDE_SID}", "codified", "alice")
    assert k["state"] == "codified" and k["history"][-1]["by"] == "alice"
    assert one(home, "acme", "claude_code")["knowledge"]["state"] == "codified"
    assert re.match(r"lore promote: claude_code:\S+ → codified \(by alice\)",
                    home.git("acme", "log", "-1", "--format=%s"))
    # A re-import keeps the promoted state.
    with open(home.claude_file, "a") as fh:
        fh.write("\n")
    home.run()
    assert one(home, "acme", "claude_code")["knowledge"]["state"] == "codified"
    with pytest.raises(service.LoreError):
        service.promote(s, f"codex:{CODEX_SID}", "famous", "alice")


def test_export_and_merge_index(home: LoreHome, tmp_path: Path) -> None:
    from services.lore import service
    from services.settings import load_settings

    home.run()
    s = load_settings(env_file=None, lore_root=home.lore, aistack_home=home.tmp)
    a = service.export_index(s)
    assert {x["key"] for x in a["sessions"]} == {f"claude_code:{CLAUDE_SID}", f"codex:{CODEX_SID}"}
    b = orjson.loads(orjson.dumps(a))
    b["machine"] = "laptop"
    b["sessions"] = [{**b["sessions"][0], "ended": "2030-01-01T00:00:00Z"},
                     {**b["sessions"][1], "key": "codex:other"}]
    merged = service.merge_index([a, b])
    assert len(merged["sessions"]) == 3
    assert {x["key"]: x["machine"] for x in merged["sessions"]}[b["sessions"][0]["key"]] == "laptop"


def test_worker_processes_write_the_same_archive_as_one_process(tmp_path: Path) -> None:
    corpus = generate(tmp_path / "corpus", sessions=12, mean_kb=30, seed=5)
    roots = {}
    for name, workers in (("one", 0), ("two", 2)):
        h = LoreHome(tmp_path / name)
        h.lore.mkdir(parents=True)
        (tmp_path / name / "redaction.key").write_bytes(b"k" * 32)
        s = run.run_import(h.env(), {"claude_code": corpus}, workers=workers)
        assert s.errors == [] and s.added["internal"] == 12
        roots[name] = h.lore / "internal"
    one = sorted(p.relative_to(roots["one"]) for p in roots["one"].rglob("*.yaml"))
    assert one == sorted(p.relative_to(roots["two"]) for p in roots["two"].rglob("*.yaml"))
    for rel in one:
        assert (roots["one"] / rel).read_bytes() == (roots["two"] / rel).read_bytes()
    a, b = index.connect(roots["one"].parent), index.connect(roots["two"].parent)
    q = "SELECT key, path, sha, input, output FROM sessions ORDER BY key"
    assert a.execute(q).fetchall() == b.execute(q).fetchall()
    assert [h.key for h in search_mod.search(a, "quixotrel", ["internal"], limit=50)] == [
        h.key for h in search_mod.search(b, "quixotrel", ["internal"], limit=50)]
