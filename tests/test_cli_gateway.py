"""`aistack budget …` and `aistack spend`, run as a user would: bad input is one clear line and exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_cli_sentinel import aistack


def test_budget_set_show_remove_and_spend(tmp_path: Path) -> None:
    out = aistack("budget", "set", "acme", "$50", "--period", "month", home=tmp_path)
    assert out.returncode == 0 and "budget for acme: $50 per month" in out.stdout
    out = aistack("budget", "show", home=tmp_path)
    assert out.stdout.startswith("acme: $0.0000 spent + $0.0000 reserved of $50 per month")
    out = aistack("spend", "--by", "client", "--json", home=tmp_path)
    assert json.loads(out.stdout) == {"by": "client", "rows": []}
    assert aistack("budget", "remove", "acme", home=tmp_path).stdout.strip() == "removed"
    assert "no budgets" in aistack("budget", "show", home=tmp_path).stdout


def test_bad_input_is_one_clear_error(tmp_path: Path) -> None:
    for args, says in [(("budget", "set", "Bad Name", "5"), "lower-case letters"),
                       (("budget", "set", "acme", "lots"), "not an amount"),
                       (("budget", "set", "acme", "5", "--period", "year"), "period must be one of"),
                       (("budget", "remove", "nobody"), "no month budget for nobody"),
                       (("spend", "--by", "nope"), "unknown grouping"),
                       (("spend", "--since", "yesterday"), "not a date")]:
        out = aistack(*args, home=tmp_path)
        assert out.returncode == 2 and says in out.stderr, (args, out.stderr)
