"""The offline demo's data: every feature the demo's commands reach has something to show."""

from __future__ import annotations

from pathlib import Path

from services import demo
from services.gateway import budgets, ledger
from services.lore import index, search
from services.runtime import bootstrap
from services.settings import load_settings


def test_the_demo_seeds_archived_sessions_spend_and_a_budget(tmp_path: Path) -> None:
    s = load_settings(env_file=None, aistack_home=tmp_path, database_url=None, sentinel_audit_dir=tmp_path / "audit",
                      claude_home=tmp_path / "claude", codex_home=tmp_path / "codex", lore_root=tmp_path / "lore")
    rt = bootstrap(s)
    demo.seed(rt)
    conn = index.connect(tmp_path / "lore")
    assert [h.client for h in search.search(conn, "flaky retry", ["acme"])] == ["acme"]
    assert search.search(conn, "zsh prompt", ["acme"]) == []  # the internal session stays internal
    assert [h.client for h in search.search(conn, "zsh prompt", ["internal"])] == ["internal"]
    assert {r.group for r in ledger.report(rt.engine, "client")} == {"acme", "internal"}
    [st] = budgets.status(rt.engine)
    assert st.budget.client == "acme" and st.spent > 0
