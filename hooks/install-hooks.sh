#!/usr/bin/env bash
# Install SENTINEL's Claude Code hooks: the same as `aistack hooks install`.
#   hooks/install-hooks.sh                      merge into ~/.claude/settings.json
#   hooks/install-hooks.sh --project DIR        merge into DIR/.claude/settings.json
#   hooks/install-hooks.sh --settings PATH      merge into PATH
#   hooks/install-hooks.sh uninstall [...]      remove exactly what install added
# The hooks run with the project's venv interpreter (created with ./dev when missing), by absolute path.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
PY="$ROOT/.venv/bin/python"
if [ ! -x "$PY" ]; then
  echo "no virtual environment yet: creating it with ./dev (first run takes a minute or two)…" >&2
  "$ROOT/dev" --help >/dev/null
fi
cd "$ROOT"
exec "$PY" -m services.sentinel.install "$@"
