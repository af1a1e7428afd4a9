"""Secrets out of everything LORE archives, before any byte reaches a client repository.

Each secret becomes `[REDACTED:<rule>:<8 hex>]`, the hex being HMAC-SHA256(installation key, secret): the same
secret always gives the same placeholder (re-imports write identical bytes and content hashes stay stable, one
leaked key can be followed across sessions) while the placeholder reveals nothing without the key. Placeholders
never match a rule, so redacting twice changes nothing. `scan` re-checks rendered output for what is left.

Throughput drives the design (an import redacts hundreds of MB; benchmarks/lore_redact.py measures it). Work
happens on the UTF-8 bytes, where every secret is ASCII and offsets need no decoding. Each pattern starts with a
literal, so the regex engine skips from candidate to candidate instead of trying every position (a literal `in`
test goes first where that is faster still); case-insensitive rules run on `bytes.lower()` (same offsets, no
IGNORECASE); `key = value` assignments are found in the reversed text, where the pattern starts with the operator;
entropy candidates come from one `bytes.translate` plus `find` of 32 token characters in a row, so the math runs
only on the rare long runs; short strings (most of a transcript's) are first tested against all patterns at once.
"""

from __future__ import annotations

import bisect
import collections
import hashlib
import hmac
import itertools
import math
import os
import pathlib
import re
import secrets
from collections.abc import Callable
from typing import Any, NamedTuple

KEY_BYTES = 32
ENTROPY_MIN_LEN = 32
ENTROPY_MAX_LEN = 512  # longer runs are data (images, signatures, encrypted blobs), not credentials
ENTROPY_BITS = 4.3


class _Hit(NamedTuple):
    start: int  # byte offsets of the secret in the UTF-8 text
    end: int
    rule: str


_Finder = Callable[[bytes, bytes], list[_Hit]]  # (text, lower-cased text) -> secrets found

_ID_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_KEY_CHARS = _ID_CHARS | frozenset(b"-.")
_DIGIT = re.compile(rb"[0-9]")
_LETTER = re.compile(rb"[A-Za-z]")


def placeholder(key: bytes, rule: str, secret: str) -> str:
    """`[REDACTED:<rule>:<first 8 hex of HMAC-SHA256(key, secret)>]`."""
    digest = hmac.new(key, secret.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
    return f"[REDACTED:{rule}:{digest[:8]}]"


def _starts_word(b: bytes, i: int) -> bool:
    # A token glued to a longer word (`task-…`, `xAKIA…`) is part of that word, not a credential.
    return i == 0 or b[i - 1] not in _ID_CHARS


# ------------------------------------------------------------------------------------------------ value checks

# Values an assignment or URL commonly holds that are not secrets (lower-cased).
_NOT_SECRET = frozenset(
    b"null none nil undefined true false yes no on off empty required optional disabled enabled str string int "
    b"integer bool boolean bytes float number any unknown object dict list secretstr redacted hidden masked "
    b"n/a na tbd todo bearer basic password passwd pass pwd secret token user username".split())
_MASK_CHARS = b"*xX.-_#\xe2\x80\xa2\xa6"  # ****, xxxx, ..., and UTF-8 bullets/ellipsis
_SYNTAX_FIRST = frozenset(b"{[(<}]),:")  # {obj} {{tpl}} [list] (expr) <your-token>, or the rest of a JSON line
_REFERENCE = re.compile(rb"\$(?:\w+|\{.*|\(.*)|%\w+%|%(?:\(\w+\))?[sdrif]", re.S)  # $VAR ${VAR} $(cmd) %VAR% %s
_WORDS = re.compile(rb"[A-Za-z]+(?:[_./-][A-Za-z]+)*")  # identifiers, dotted names, word/word: letters only
_DOTTED = re.compile(rb"[A-Za-z_]+[0-9]*(?:\.[A-Za-z_]+[0-9]*)+")  # self.token, settings.API_KEY (not ya29.a0Af…)
_NUMBER = re.compile(rb"[0-9]{1,7}(?:\.[0-9]+)?")  # counts and sizes (token: 4096), not secrets
_PATH = re.compile(rb"(?:~|\.{1,2})?/[\w./-]*")  # PWD=/home/dev, not a password
_SCHEME_WORD = re.compile(rb"(?i)(?:bearer|basic|token)[ \t]+")  # the token after it is the secret


def _plain(v: bytes) -> bool:
    """Obviously not a secret: empty, a literal like null/true, a reference, a template, a mask, a placeholder."""
    s = v.strip()
    return (not s or s[0] in _SYNTAX_FIRST or s.lower() in _NOT_SECRET or not s.strip(_MASK_CHARS)
            or b"[REDACTED:" in s or _REFERENCE.fullmatch(s) is not None)


def _code(v: bytes, config_style: bool) -> bool:
    """An unquoted value that reads as code or a type (`tokens[i]`, `hash(pw)`, `self.token`, `str`)."""
    if len(v) < 3 or b"(" in v or b"[" in v:
        return True
    if _NUMBER.fullmatch(v) or _PATH.fullmatch(v) or _DOTTED.fullmatch(v):
        return True
    # A bare word is a variable in code (`token = value`) but the value itself in env/CLI config (`PASSWORD=x`).
    return not config_style and _WORDS.fullmatch(v) is not None


# ------------------------------------------------------------------------------------------------ pattern rules

def _hits(rx: re.Pattern[bytes], hay: bytes, hit: Callable[[re.Match[bytes]], _Hit | None]) -> list[_Hit]:
    """The matches `hit` accepts. After a veto the search resumes inside the match, which may hide a good one
    (`…Nxoxb-xoxb-<token>`): otherwise redacting what is around it could expose it to a second pass."""
    out = []
    m = rx.search(hay)  # the common answer is "none", and `search` says so cheapest
    while m is not None:
        h = hit(m)
        if h is None:
            m = rx.search(hay, m.start() + 1)
        else:
            out.append(h)
            m = rx.search(hay, m.end())
    return out


# Every pattern rule's pattern, by whether it runs on the lower-cased text: joined into one gate for short texts.
_GATE_PATTERNS: dict[bool, list[bytes]] = {False: [], True: []}


def _regex(rule: str, pattern: bytes, *, trigger: bytes = b"", group: int = 0, lower: bool = False,
           ok: Callable[[bytes, int, int], bool] | None = None) -> _Finder:
    """A rule that is one pattern (starting with a literal, so the engine skips ahead); `group` is the secret.

    `trigger` is a literal tested with `in` first, where that is faster than the pattern's own scan;
    `lower` runs on the lower-cased text; `ok(text, start, end)` vetoes a match.
    """
    rx = re.compile(pattern)
    _GATE_PATTERNS[lower].append(pattern)

    def find(b: bytes, lb: bytes) -> list[_Hit]:
        hay = lb if lower else b
        if trigger and trigger not in hay:
            return []

        def hit(m: re.Match[bytes]) -> _Hit | None:
            s, e = m.span(group)
            return _Hit(s, e, rule) if ok is None or ok(b, s, e) else None

        return _hits(rx, hay, hit)

    return find


def _word_start(b: bytes, s: int, e: int) -> bool:
    return _starts_word(b, s)


def _sk_rule(b: bytes, s: int) -> str:
    return "anthropic-key" if b.startswith(b"sk-ant-", s) else "openai-key"


_SK = re.compile(rb"sk-(?:ant-|proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}")


def _sk_hit(m: re.Match[bytes]) -> _Hit | None:
    b, (s, e) = m.string, m.span()
    rule = _sk_rule(b, s)
    # Real OpenAI keys are random and hold digits; `sk-learn-…`-style names do not.
    if _starts_word(b, s) and (rule == "anthropic-key" or _DIGIT.search(b, s + 3, e)):
        return _Hit(s, e, rule)
    return None


def _sk_keys(b: bytes, lb: bytes) -> list[_Hit]:
    """sk-ant-… (Anthropic) and sk-… / sk-proj-… (OpenAI) in one scan."""
    return _hits(_SK, b, _sk_hit) if b"sk-" in b else []


_STRIPE = re.compile(rb"k_(?:live|test)_[A-Za-z0-9]{10,}")  # from the `k`: a literal start scans fastest


def _stripe_hit(m: re.Match[bytes]) -> _Hit | None:
    b, s = m.string, m.start() - 1
    return _Hit(s, m.end(), "stripe-key") if s >= 0 and b[s] in b"sr" and _starts_word(b, s) else None


def _stripe_keys(b: bytes, lb: bytes) -> list[_Hit]:
    """sk_live_/rk_live_/sk_test_/rk_test_ (secret and restricted keys; pk_ publishable keys are public)."""
    return _hits(_STRIPE, b, _stripe_hit)


_WORDY_TOKEN = re.compile(rb"[a-z]+(?:[-_.][a-z]+)*|[A-Z]+(?:[-_.][A-Z]+)*")  # bearer authentication, YOUR_TOKEN


def _bearer_ok(b: bytes, s: int, e: int) -> bool:
    return _WORDY_TOKEN.fullmatch(b, s, e) is None


def _basic_ok(b: bytes, s: int, e: int) -> bool:
    return not _plain(b[s:e])


# ------------------------------------------------------------------------------------------------ URL passwords

_DSN_SCHEMES = frozenset(b"postgres postgresql mysql mariadb mongodb redis rediss amqp amqps mssql sqlserver "
                         b"oracle cockroachdb clickhouse".split())
_URL = re.compile(rb"://[^\s/:@'\"<>\[\]{}]{0,200}:([^\s/'\"<>]{1,500})@")
_SCHEME_TAIL = re.compile(rb"[A-Za-z][A-Za-z0-9+.-]{0,30}\Z")


def _url_hit(m: re.Match[bytes]) -> _Hit | None:
    b, (s, e) = m.string, m.span(1)
    if _plain(b[s:e]):
        return None
    sm = _SCHEME_TAIL.search(b, max(0, m.start() - 31), m.start())
    scheme = sm.group().lower().rsplit(b".", 1)[-1].split(b"+")[0] if sm else b""  # `x.postgres+psycopg`
    return _Hit(s, e, "dsn-password" if scheme in _DSN_SCHEMES else "url-password")


def _url_passwords(b: bytes, lb: bytes) -> list[_Hit]:
    """scheme://user:PASSWORD@host: only the password; database schemes are `dsn-password`."""
    return _hits(_URL, b, _url_hit)


# ------------------------------------------------------------------------------------------------ assignments

_KEYWORDS = (b"password", b"passwd", b"passphrase", b"pass", b"pwd", b"secret", b"token", b"auth", b"authorization",
             b"credential", b"credentials", b"apikey", b"secretkey", b"accesskey", b"privatekey", b"secretkeybase",
             *(w + sep + b"key" for w in (b"api", b"secret", b"access", b"private") for sep in (b"_", b"-")),
             b"secret_key_base", b"secret-key-base")
# Keys and operators are found in the reversed lower-cased text: there the pattern starts with the literal `=` or
# `:`, which the regex engine skips to quickly, instead of with a keyword alternation it must try at every letter.
# Reversed, `key = value` reads `eulav = yek`: operator, spaces, optional quote, then the keyword, which is thereby
# the end of the key (`password_hash = …` does not match, `DB_PASSWORD=…` does). _REV_KEYWORDS is _KEYWORDS
# reversed and factored by first letter, as the engine tries alternatives one by one (a test checks they agree).
_REV_KEYWORDS = (rb"yek[_-]?(?:ipa|terces|ssecca|etavirp)|d(?:rowssap|wssap|wp)|e(?:sarhpssap|sab[_-]?yek[_-]?terces)"
                 rb"|terces|n(?:ekot|oitazirohtua)|htua|s(?:sap|laitnederc)|laitnederc")
_REV_EQ = re.compile(rb"=(?<![=~!<>]=)[ \t]*(?:[\"']\\?)?(?P<k>" + _REV_KEYWORDS + rb")")  # not ==, ~=, !=, <=, >=
_REV_COLON = re.compile(rb":(?<![:=]:)[ \t]*(?:[\"']\\?)?(?P<k>" + _REV_KEYWORDS + rb")")  # not ::, :=
_VALUE = re.compile(rb">?(?P<sp>[ \t]*)(?:\*\*?[ \t]*)?(?:\\?\"(?P<dq>[^\"\n]*)|\\?'(?P<sq>[^'\n]*)|`(?P<bq>[^`\n]*)"
                    rb"|(?P<raw>[^\s'\"`,;&|)}\]\\]+))")  # raw values end at a backslash: `true\n` in JSON
_AWS_SECRET_KEY = re.compile(rb"secret[_-]?access[_-]?key\Z")


def _key_start(b: bytes, i: int) -> int:
    while i > 0 and b[i - 1] in _KEY_CHARS:
        i -= 1
    return i


def _assignment(b: bytes, op: int, ks: int, ke: int) -> _Hit | None:
    """The secret assigned by the operator at `op` to the key whose keyword is b[ks:ke], if it can be one."""
    m = _VALUE.match(b, op + 1)
    if m is None:
        return None
    name = next(g for g in ("dq", "sq", "bq", "raw") if m.group(g) is not None)
    s, e = m.span(name)
    if e > s and b[e - 1] == 0x5C:  # JSON-escaped text: the backslash belongs to the closing \"
        e -= 1
    while name == "raw" and e > s and b[e - 1] == 0x3A:  # `"f": lambda: …`, `else:`: the colon is syntax
        e -= 1
    sw = _SCHEME_WORD.match(b, s, e)
    if sw:  # `Authorization: "Bearer …"`: the scheme word stays; the token is the secret
        s = sw.end()
    value = b[s:e]
    if _plain(value):
        return None
    start = _key_start(b, ks)
    # Not keys: a placeholder's rule id (`[REDACTED:github-token:…]`), a URL's user (`https://x-token:…@`).
    if b.endswith(b"[REDACTED:", 0, start) or b.endswith(b"://", 0, start):
        return None
    key = b[start:ke]
    if name == "raw":
        # Env/CLI/compose config (`PASSWORD=x`, `--token=x`, `POSTGRES_PASSWORD: x`), where a bare word is the value.
        tight = b[op] == 0x3D and ke == op and not m.group("sp")
        config = (key.isupper() and (tight or b[op] == 0x3A)) or (tight and key.startswith(b"--"))
        if _code(value, config):
            return None
    return _Hit(s, e, "aws-secret" if _AWS_SECRET_KEY.search(key.lower()) else "assignment")


def _assignments(b: bytes, lb: bytes) -> list[_Hit]:
    """`PASSWORD=…`, `api_key: …`, `"token": "…"`, `aws_secret_access_key = …`: the value only."""
    if b"=" not in b and b":" not in b:
        return []
    rl = lb[::-1]
    n = len(b)
    out = []
    for rx in (_REV_EQ, _REV_COLON):
        for m in rx.finditer(rl):
            hit = _assignment(b, n - 1 - m.start(), n - m.end("k"), n - m.start("k"))
            if hit:
                out.append(hit)
    return out


# ------------------------------------------------------------------------------------------------ entropy

_RUN_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-")
_RUN_MAP = bytes(0x61 if c in _RUN_CHARS else 0x20 for c in range(256))  # token char -> "a", other -> " "
_RUN_NEEDLE = b"a" * ENTROPY_MIN_LEN
_HEXISH = re.compile(rb"[0-9a-fA-F-]+")  # git SHAs, sha256 digests, UUIDs
# Ids and encodings that are random but not secret: Anthropic/OpenAI object ids, SRI hashes, Fernet blobs
# (encrypted reasoning), SSH public keys.
_NOT_SECRET_PREFIX = re.compile(
    rb"(?:msg|toolu|srvtoolu|req|call|chatcmpl|resp|rs|fc|file|org|proj|asst|thread|run|batch|ftjob|ft|step"
    rb"|cs|compl|evt|sess)[_-]|sha(?:1|256|384|512)-|gAAAAA|AAAA[B-E]3NzaC1")
_CAMEL_HUMP = re.compile(rb"[A-Z][a-z]{2,}")
_CAMEL_WORD = re.compile(rb"[A-Z]?[a-z]{2,}")
_DIGEST_BEFORE = (b"h1:", b"sha1:", b"sha256:", b"sha384:", b"sha512:", b"md5:", b"base64,")  # go.sum, data: URIs
_WORD_PART = re.compile(rb"[A-Za-z]?[a-z0-9]*(?:[A-Z][a-z0-9]+)*|[A-Z0-9]{1,10}")  # path/identifier pieces
_SEPARATORS = re.compile(rb"[/_-]+")


def _shannon(s: bytes) -> float:
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in collections.Counter(s).values())


def _identifier_or_path(core: bytes) -> bool:
    # /home/dev/src/authToken2, -home-dev-projects-acme-api-v2, test_retry_backoff_503: words joined by separators.
    parts = [p for p in _SEPARATORS.split(core) if p]
    return len(parts) >= 3 and all(_WORD_PART.fullmatch(p) for p in parts)


def _camel_case(core: bytes) -> bool:
    # handleOAuth2CallbackForGoogle: mostly capitalised words (random base62 gets < 0.8 coverage 999 times in 1000).
    covered = sum(len(w) for w in _CAMEL_WORD.findall(core))
    return covered >= 0.8 * len(core) and len(_CAMEL_HUMP.findall(core)) >= 3


def _random(core: bytes) -> bool:
    """Looks like a generated credential: letters and digits, high entropy, not a hash, an id, a path or a name."""
    if _DIGIT.search(core) is None or _LETTER.search(core) is None:
        return False
    if _HEXISH.fullmatch(core) or _NOT_SECRET_PREFIX.match(core) or _identifier_or_path(core):
        return False
    return _shannon(core) >= ENTROPY_BITS and not _alphabet(core) and not _camel_case(core)


def _alphabet(core: bytes) -> bool:
    # "ABC…xyz0123456789+/" in code that spells out an alphabet: maximal entropy, nothing random about it.
    return sum(y == x + 1 for x, y in itertools.pairwise(core)) * 2 >= len(core)


def _uncovered(i: int, j: int, taken: list[_Hit]) -> list[tuple[int, int]]:
    """The parts of b[i:j] no other rule has claimed (`taken` is sorted and disjoint)."""
    parts = []
    k = bisect.bisect_left(taken, i, key=lambda h: h.end)
    while k < len(taken) and taken[k].start < j:
        if taken[k].start > i:
            parts.append((i, taken[k].start))
        i = max(i, taken[k].end)
        k += 1
    if i < j:
        parts.append((i, j))
    return parts


def _entropy(b: bytes, taken: list[_Hit]) -> list[_Hit]:
    """High-entropy tokens: runs of >= 32 [A-Za-z0-9+/_-], plus any `=` padding, that look random.

    Judged on what the other rules left (`taken`), so a rule's placeholder and the entropy rule never disagree
    about where a secret ends (`https://hooks.slack.com/services/…` keeps its prefix), and `=` counts only as
    trailing padding (as in base64), so `KEY=value` is judged on the value alone.
    """
    if len(b) < ENTROPY_MIN_LEN:
        return []
    t = b.translate(_RUN_MAP)
    out: list[_Hit] = []
    i = t.find(_RUN_NEEDLE)
    while i >= 0:
        j = t.find(b" ", i + ENTROPY_MIN_LEN)
        if j < 0:
            j = len(t)
        for s, e in _uncovered(i, j, taken) if taken else ((i, j),):
            if ENTROPY_MIN_LEN <= e - s <= ENTROPY_MAX_LEN and not _digest(b, s, taken, out) and _random(b[s:e]):
                while e == j and b[e:e + 1] == b"=":  # base64 padding
                    e += 1
                    j += 1
                out.append(_Hit(s, e, "entropy"))
        i = t.find(_RUN_NEEDLE, j)
    return out


def _digest(b: bytes, s: int, taken: list[_Hit], found: list[_Hit]) -> bool:
    """b[s:] follows `h1:`, `sha256:`, `base64,`… that no secret covers (once redacted, the label is gone too)."""
    k = bisect.bisect_right(taken, s, key=lambda h: h.end)
    floor = max(taken[k - 1].end if k else 0, found[-1].end if found else 0)
    return b.endswith(_DIGEST_BEFORE, floor, s)


# ------------------------------------------------------------------------------------------------ the rules

# Priority order: when rules claim the same bytes, the earliest (most specific) one names the placeholder.
RULES = ("private-key", "jwt", "anthropic-key", "openai-key", "stripe-key", "github-token", "slack-token",
         "slack-webhook", "google-api-key", "aws-access-key", "aws-secret", "dsn-password", "url-password", "bearer",
         "basic-auth", "assignment", "entropy")
_PRIORITY = {r: i for i, r in enumerate(RULES)}
_FINDERS: tuple[_Finder, ...] = (
    _regex("private-key",
           rb"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY[A-Z0-9 ]{0,20}-----(?:[\s\S]{0,20000}?-----END [A-Z0-9 ]{0,60}"
           rb"-----|(?:(?:\s|\\[rn])*(?:[A-Za-z0-9+/=]{16,}|Proc-Type:[^\n\\]*|DEK-Info:[^\n\\]*))*)",
           trigger=b"PRIVATE KEY"),
    _regex("jwt", rb"eyJ[A-Za-z0-9_-]{6,}\.eyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]*", trigger=b"eyJ", ok=_word_start),
    _sk_keys,
    _stripe_keys,
    _regex("github-token", rb"gh[pousr]_[A-Za-z0-9]{20,}", ok=_word_start),
    _regex("github-token", rb"github_pat_[A-Za-z0-9_]{20,}", trigger=b"github_pat_", ok=_word_start),
    _regex("slack-token", rb"xox[abposre]-[A-Za-z0-9-]{10,}", ok=_word_start),
    _regex("slack-webhook", rb"hooks\.slack\.com/(?:services|workflows|triggers)/([A-Za-z0-9_/-]{8,})",
           trigger=b"hooks.slack.com/", group=1),
    _regex("google-api-key", rb"AIza[0-9A-Za-z_-]{30,}", ok=_word_start),
    _regex("aws-access-key", rb"A(?:KIA|SIA)[0-9A-Z]{16}(?![0-9A-Za-z])", ok=_word_start),
    _url_passwords,
    _regex("bearer", rb"bearer[ \t]+([a-z0-9._~+/=-]{8,})", group=1, lower=True, ok=_bearer_ok),
    _regex("basic-auth", rb"authorization(?:\\?[\"'])?[ \t]*[:=][ \t]*(?:\\?[\"'])?basic[ \t]+([a-z0-9+/=]{8,})",
           group=1, lower=True, ok=_basic_ok),
    _assignments,
)


_GATE_PATTERNS[False] += [_SK.pattern, _STRIPE.pattern, _URL.pattern]
# Below _SHORT bytes one search for any rule's pattern is cheaper than asking each rule (most strings in a
# transcript are short: ids, names, paths, commands); above it, each rule's own literal-led scan is faster.
_SHORT = 512  # measured break-even
_GATE = re.compile(b"|".join(_GATE_PATTERNS[False]))
_LOWER_GATE = re.compile(b"|".join(_GATE_PATTERNS[True]))


def _merge(hits: list[_Hit]) -> list[_Hit]:
    """Overlapping claims become one secret (their union), named by the most specific rule among them."""
    if len(hits) < 2:
        return hits
    hits.sort()
    out = [hits[0]]
    for h in hits[1:]:
        last = out[-1]
        if h.start < last.end:
            rule = last.rule if _PRIORITY[last.rule] <= _PRIORITY[h.rule] else h.rule
            out[-1] = _Hit(last.start, max(last.end, h.end), rule)
        else:
            out.append(h)
    return out


def _find(b: bytes) -> list[_Hit]:
    """Every secret in `b`, sorted, not overlapping."""
    lb = b.lower()
    finders = _FINDERS
    if len(b) < _SHORT and _GATE.search(b) is None and _LOWER_GATE.search(lb) is None:
        finders = (_assignments,)
    hits = _merge([h for find in finders for h in find(b, lb)])
    found = _entropy(b, hits)
    return sorted(hits + found) if found else hits


# ------------------------------------------------------------------------------------------------ public API

class Redactor:
    """Replaces secrets with keyed placeholders; `counts` tallies rule -> secrets replaced, across calls."""

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError("the redaction key must not be empty")
        self._key = key
        self.counts: collections.Counter[str] = collections.Counter()

    def text(self, s: str) -> str:
        """`s` with every secret replaced; the same object when there is none."""
        if len(s) < 8:  # nothing shorter holds a secret any rule would take
            return s
        b = s.encode("utf-8", "surrogatepass")
        hits = _find(b)
        if not hits:
            return s
        out: list[bytes] = []
        pos = 0
        for h in hits:
            secret = b[h.start:h.end].decode("utf-8", "surrogatepass")
            out += (b[pos:h.start], placeholder(self._key, h.rule, secret).encode("ascii"))
            pos = h.end
            self.counts[h.rule] += 1
        out.append(b[pos:])
        return b"".join(out).decode("utf-8", "surrogatepass")

    def walk(self, obj: Any) -> Any:
        """A copy of a JSON-like structure with every string value redacted (dict keys are kept as they are)."""
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, dict):
            return {k: self.walk(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self.walk(v) for v in obj]
        if isinstance(obj, tuple):
            return tuple(self.walk(v) for v in obj)
        return obj


def _excerpt(secret: bytes) -> str:
    # Enough to find it again (first characters and length), not enough to use it.
    return f"{secret[:4].decode('utf-8', 'replace')}…({len(secret)} bytes)"


def scan(text: str) -> list[tuple[str, str]]:
    """(rule, masked excerpt) for everything secret-shaped in `text`; placeholders never count."""
    b = text.encode("utf-8", "surrogatepass")
    return [(h.rule, _excerpt(b[h.start:h.end])) for h in _find(b)]


def load_key(path: pathlib.Path) -> bytes:
    """The installation's HMAC key: read it, or create it once (32 random bytes, mode 0600, parents created)."""
    path = pathlib.Path(path)
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, secrets.token_bytes(KEY_BYTES))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # atomic and never overwrites: a concurrent first run keeps whichever key won
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return _read_key(path)


def _read_key(path: pathlib.Path) -> bytes:
    key = path.read_bytes()
    if len(key) < 16:  # a truncated key would silently change every placeholder: refuse instead
        raise ValueError(f"{path}: redaction key is {len(key)} bytes, expected {KEY_BYTES}")
    return key
