"""Secret redaction for what SENTINEL writes down (audit lines, alert files): `[REDACTED:<rule>]`.

Stdlib only. Hot-path cost matters (it runs on every tool call), so each rule carries cheap literal
triggers and its regular expression is compiled only the first time a trigger appears in the text:
an ordinary command (`ls -la`, `pytest -q`) costs a handful of substring tests and no regex at all.
"""

from __future__ import annotations

import re

# Typing names are for the type checker only: importing `typing` costs the hook ~3 ms (mypy honours this flag).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

# Enough text to hold a secret that starts anywhere before the 500-character cut after redaction.
WINDOW = 65536
REDACTED = "[REDACTED:{}]"

# (rule, triggers (tested on the lower-cased text), pattern, keep-prefix group or 0)
# With a keep group, the match up to that group's end survives and only the rest is replaced.
_RULES: tuple[tuple[str, tuple[str, ...], str, int], ...] = (
    ("private-key", ("-----begin",),
     r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY[A-Z0-9 ]{0,20}-----[\s\S]*?(?:-----END [A-Z0-9 ]{1,60}-----|\Z)", 0),
    ("pem", ("-----begin",), r"-----BEGIN [A-Z0-9 ]{1,60}-----[\s\S]*?(?:-----END [A-Z0-9 ]{1,60}-----|\Z)", 0),
    ("anthropic-key", ("sk-ant-",), r"sk-ant-[A-Za-z0-9_\-]{8,}", 0),
    ("stripe-key", ("_live_", "_test_"), r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{8,}", 0),
    ("openai-key", ("sk-",), r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{16,}", 0),
    ("aws-key", ("akia", "asia"), r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", 0),
    ("aws-secret", ("aws_secret", "secret_access_key"),
     r"(?i)((?:aws_)?secret_access_key[\"']?\s{0,5}[=:]\s{0,5}[\"']?)[A-Za-z0-9/+=]{30,}", 1),
    ("github-token", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
     r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})", 0),
    ("slack-token", ("xox",), r"\bxox[abposre]-[A-Za-z0-9\-]{8,}", 0),
    ("google-key", ("aiza",), r"\bAIza[0-9A-Za-z_\-]{30,}", 0),
    ("jwt", ("eyj",), r"\beyJ[A-Za-z0-9_\-]{6,}\.eyJ[A-Za-z0-9_\-]{6,}\.[A-Za-z0-9_\-]*", 0),
    ("bearer", ("bearer", "basic "), r"(?i)(\b(?:bearer|basic)\s{1,5})(?!\[REDACTED)[A-Za-z0-9._~+/=\-]{8,}", 1),
    ("url-password", ("://",),
     r"(\b[A-Za-z][A-Za-z0-9+.\-]{0,30}://[^\s/:@'\"\[\]]{1,200}:)(?!\[REDACTED)[^\s/@'\"]{1,500}(?=@)", 1),
    ("cli-password", ("mysql", "mariadb", "sshpass"),
     r"(\b(?:mysql|mariadb)[a-z]{0,10}\b[^\n;&|]{0,200}?\s-p|\bsshpass\s{1,5}-p\s{0,5})(?!\[REDACTED)[^\s'\"]+", 1),
    ("user-password", ("-u", "--user"),
     r"((?:\s-u\s{0,5}|--user(?:=|\s{1,5}))['\"]?[^\s:'\"]{1,100}:)(?!\[REDACTED)[^\s'\"@]+", 1),
    ("password-flag", ("--pass", "--token", "--secret", "--api-key", "--apikey", "--auth"),
     r"(?i)(--(?:password|passwd|pass|token|secret|api-key|apikey|auth-token|auth)(?:=|\s{1,5}))"
     r"(?!\[REDACTED)(?:'[^'\n]{0,500}'?|\"[^\"\n]{0,500}\"?|[^\s'\";&|]+)", 1),
    # NAME=value / name: value where NAME mentions a secret. The match starts at the keyword (a prefix such as
    # `DB_` stays outside it) and every run is bounded, so no input can make it backtrack for long.
    ("assignment", ("pass", "pwd", "secret", "token", "key", "auth", "cred"),
     r"(?i)((?:password|passwd|pwd|secret|token|api[_\-]?key|access[_\-]?key|private[_\-]?key|auth[_\-]?token"
     r"|authorization|credentials?)[A-Za-z0-9_]{0,40}[\"']?\s{0,5}[=:]\s{0,5})"
     r"(?!\[REDACTED)(?![\"']?\$)(?!(?:bearer|basic)\s)(?:'[^'\n]{0,500}'?|\"[^\"\n]{0,500}\"?|[^\s'\";&|,}]+)", 1),
)
_compiled: dict[str, re.Pattern[str]] = {}


def _pattern(rule: str, source: str) -> re.Pattern[str]:
    pat = _compiled.get(rule)
    if pat is None:
        pat = _compiled[rule] = re.compile(source)
    return pat


def _replacer(mark: str, keep: int) -> Callable[[re.Match[str]], str]:
    def repl(m: re.Match[str]) -> str:
        # Keep the match up to the end of group `keep` (e.g. `PASSWORD=`), replace the rest.
        return (m.string[m.start():m.end(keep)] if keep else "") + mark
    return repl


def redact(text: str) -> str:
    """`text` with every secret the rules know replaced by `[REDACTED:<rule>]`."""
    if not text:
        return text
    lower = text.lower()
    for rule, triggers, source, keep in _RULES:
        if not any(t in lower for t in triggers):
            continue
        text = _pattern(rule, source).sub(_replacer(REDACTED.format(rule), keep), text)
        lower = text.lower()
    return text


def redact_subject(text: str, limit: int = 500) -> str:
    """Redact, then cut to `limit` characters (redacting first, so a cut never exposes half a secret)."""
    if len(text) > WINDOW:
        text = text[:WINDOW]
    out = redact(text)
    if len(out) > limit:
        out = out[: limit - 1] + "…"
    return out
