#!/usr/bin/env bash
# Install the real Claude Code CLI (npm @anthropic-ai/claude-code, pinned) for the offline end-to-end hook test.
#
# Usage:  eval "$(bash .ci/claude_code.sh)"; export AISTACK_CLAUDE_BIN
#
# Prints exactly one line on stdout:  AISTACK_CLAUDE_BIN=/abs/path/to/claude
# Everything else goes to stderr. Idempotent: when the pinned version is already installed under the prefix it
# only checks it and prints the path (well under a second).
# Env: AISTACK_CLAUDE_PREFIX (install prefix, default $HOME/.cache/aistack-claude).
set -euo pipefail

# Keep stdout clean for `eval`: fd 3 is the real stdout, everything else goes to stderr.
exec 3>&1 1>&2

VERSION=2.1.197  # the version the hook payloads in shared/fixtures/claude_code_hooks were captured with
PREFIX="${AISTACK_CLAUDE_PREFIX:-$HOME/.cache/aistack-claude}"
PKG="$PREFIX/node_modules/@anthropic-ai/claude-code"
BIN="$PREFIX/node_modules/.bin/claude"

die() { echo "claude_code.sh: $*" >&2; exit 1; }

installed_version() {
    [[ -f "$PKG/package.json" ]] || return 0
    node -e 'process.stdout.write(require(process.argv[1]).version)' "$PKG/package.json" 2>/dev/null || true
}

command -v node >/dev/null 2>&1 || die "node is not installed (need Node.js >= 18: apt-get install nodejs npm)"
command -v npm >/dev/null 2>&1 || die "npm is not installed (apt-get install npm)"

if [[ "$(installed_version)" != "$VERSION" || ! -x "$BIN" ]]; then
    echo "claude_code.sh: installing @anthropic-ai/claude-code@$VERSION into $PREFIX…"
    mkdir -p "$PREFIX"
    npm install --no-audit --no-fund --prefix "$PREFIX" "@anthropic-ai/claude-code@$VERSION"
fi

[[ "$(installed_version)" == "$VERSION" ]] || die "expected @anthropic-ai/claude-code@$VERSION under $PREFIX"
[[ -x "$BIN" ]] || die "$BIN is missing or not executable after npm install"
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"

# Check that it really starts (the platform binary comes from an optional dependency + postinstall step).
got="$(DISABLE_AUTOUPDATER=1 CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 timeout 30 "$BIN" --version </dev/null)" \
    || die "$BIN --version failed"
case "$got" in
    "$VERSION"*) echo "claude_code.sh: $BIN: $got" ;;
    *) die "$BIN --version printed '$got', expected $VERSION" ;;
esac

echo "AISTACK_CLAUDE_BIN=$BIN" >&3
