"""Where SENTINEL keeps its files, resolved from the environment alone (the hooks have no settings object).

Stdlib only and deliberately free of `pathlib`: every function returns a plain `str`, because the hook
runs with `-S` on every tool call and importing pathlib would cost several milliseconds there.

- `AISTACK_HOME`            default `~/.local/share/aistack` (same default as the app's settings)
- `SENTINEL_AUDIT_DIR`      default `~/.claude/audit`
- `SENTINEL_POLICY`         the user's policy file; default `$AISTACK_HOME/sentinel-policy.toml` if it exists
- `SENTINEL_APPROVAL_WAIT`  seconds an `approve` rule waits for the admin; default 0 (do not wait)
- `SENTINEL_DAEMON`         `off` = judge every call in the hook process: no warm judge daemon is used or
                            started (see daemon.py; `SENTINEL_DAEMON_IDLE` = its idle timeout in seconds)

State: `$AISTACK_HOME/sentinel/alerts/` (block alerts spooled for the bot) and
`$AISTACK_HOME/sentinel/approvals/` (the admin's single-use approvals and denials).
"""

from __future__ import annotations

import os

DEFAULT_HOME = "~/.local/share/aistack"
DEFAULT_AUDIT_DIR = "~/.claude/audit"
USER_POLICY_NAME = "sentinel-policy.toml"
MAX_APPROVAL_WAIT = 600.0  # Claude Code's own hook timeout would cut a longer wait anyway


def _expand(value: str) -> str:
    # Same expansion as services.settings: environment variables first, then `~`.
    return os.path.abspath(os.path.expanduser(os.path.expandvars(value)))


def _env(name: str) -> str:
    return os.environ.get(name, "").strip()


def aistack_home() -> str:
    return _expand(_env("AISTACK_HOME") or DEFAULT_HOME)


def audit_dir() -> str:
    return _expand(_env("SENTINEL_AUDIT_DIR") or DEFAULT_AUDIT_DIR)


def sentinel_dir() -> str:
    return os.path.join(aistack_home(), "sentinel")


def alerts_dir() -> str:
    return os.path.join(sentinel_dir(), "alerts")


def approvals_dir() -> str:
    return os.path.join(sentinel_dir(), "approvals")


def user_policy_path() -> str | None:
    """The user's policy file, or None for the default policy alone.

    An explicit `SENTINEL_POLICY` is returned even when the file is missing: the policy loader then fails
    and the hook fails closed, instead of silently running without the rules the user asked for.
    """
    explicit = _env("SENTINEL_POLICY")
    if explicit:
        return _expand(explicit)
    implicit = os.path.join(aistack_home(), USER_POLICY_NAME)
    return implicit if os.path.isfile(implicit) else None


def approval_wait() -> float:
    """Seconds to wait for the admin on an `approve` rule; 0 (the default, and for any bad value) = no wait."""
    raw = _env("SENTINEL_APPROVAL_WAIT")
    if not raw:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        return 0.0
    if value != value or value <= 0:  # NaN or not positive
        return 0.0
    return min(value, MAX_APPROVAL_WAIT)
