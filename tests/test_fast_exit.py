"""bot/fast_exit.py: a short command leaves without module teardown, but loses no output, no exit code and no exit
handler (logging, pools and temp dirs rely on those)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("ending", "code", "stderr"), [("raise SystemExit(3)", 3, ""), ("return 1", 1, ""),
                                                        ("raise SystemExit('bad input: try --help')", 1,
                                                         "bad input: try --help\n"), ("return None", 0, "")])
def test_output_exit_code_and_exit_handlers_survive(tmp_path: Path, ending: str, code: int, stderr: str) -> None:
    marker = tmp_path / "atexit-ran"
    script = f"""
import atexit, sys
from bot.fast_exit import run_and_exit
atexit.register(lambda: open({str(marker)!r}, "w").write("yes"))
def command():
    sys.stdout.write("x" * 200_000)  # more than a pipe buffer: must be flushed, not dropped
    {ending}
run_and_exit(command)
"""
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert (out.returncode, len(out.stdout), out.stderr) == (code, 200_000, stderr)
    assert marker.read_text() == "yes"
