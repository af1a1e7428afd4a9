"""LORE's redactor: every rule, keyed deterministic placeholders, idempotence, `walk`, counts, `scan`, false positives,
and the key file.

Secret-shaped strings are built at run time from random.Random(1): no literal secret sits in this file (GitHub push
protection and our own scan would refuse it; `test_sources_hold_no_secret_shaped_literal` checks).
"""

from __future__ import annotations

import base64
import collections
import copy
import hashlib
import hmac
import json
import os
import random
import re
import stat
import string
import uuid
from pathlib import Path

import pytest

from services.lore import redact
from services.lore.redact import RULES, Redactor, load_key, placeholder, scan
from tests.lore_fixtures import FIXTURES, ROOT, generate

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
ALNUM = string.ascii_letters + string.digits
UPPER_DIGITS = string.ascii_uppercase + string.digits
PLACEHOLDER = re.compile(r"\[REDACTED:([a-z0-9-]+):([0-9a-f]{8})\]")
_RND = random.Random(1)


def rand(n: int, alphabet: str = ALNUM) -> str:
    """Random characters with at least one digit and one letter, as generated credentials have."""
    body = "".join(_RND.choice(alphabet) for _ in range(n - 2))
    digit = _RND.choice([c for c in alphabet if c.isdigit()])
    letter = _RND.choice([c for c in alphabet if c.isalpha()])
    return body[: n // 2] + digit + letter + body[n // 2:]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt() -> str:
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64url(json.dumps({"sub": rand(12), "iat": 1767225600}).encode())
    return f"{header}.{payload}.{rand(43, ALNUM + '-_')}"


def _pem(kind: str) -> str:
    dashes = "-" * 5
    body = "\n".join(rand(64, ALNUM + "+/") for _ in range(6)) + "\n" + rand(20, ALNUM + "+/") + "=="
    return f"{dashes}BEGIN {kind} KEY{dashes}\n{body}\n{dashes}END {kind} KEY{dashes}"


# Secrets, built once (deterministic whatever tests run).
ANT = "sk-ant-api03-" + "A" * 4 + rand(89, ALNUM + "-_") + "AA"
OAI = "sk-proj-" + rand(48, ALNUM + "-_")
OAI_LEGACY = "sk-" + rand(48)
AKID = "AKIA" + rand(16, UPPER_DIGITS)
ASID = "ASIA" + rand(16, UPPER_DIGITS)
AWS_SECRET = rand(40, ALNUM + "/+")
GHP = "ghp_" + rand(36)
GHS = "ghs_" + rand(36)
GH_PAT = "github_pat_" + rand(22) + "_" + rand(59)
SLACK = "xoxb-" + "".join(_RND.choice(string.digits) for _ in range(12)) + "-" + rand(24)
SLACK_HOOK_PATH = "T" + rand(8, UPPER_DIGITS) + "/B" + rand(10, UPPER_DIGITS) + "/" + rand(24)
GOOGLE = "AIza" + rand(35, ALNUM + "-_")
STRIPE_LIVE = "sk_" + "live_" + rand(24)
STRIPE_RESTRICTED = "rk_" + "test_" + rand(24)
PEM_RSA = _pem("RSA PRIVATE")
PEM_OPENSSH = _pem("OPENSSH PRIVATE")
JWT = _jwt()
PW = rand(14, ALNUM + "!#%^*")
PW2 = rand(10)
PCT_PW = "%" + rand(10) + "!"
BEARER = rand(40, ALNUM + "._-")
BASIC = base64.b64encode(f"deploy:{rand(12)}".encode()).decode()
RANDOM_TOKEN = rand(48)
RANDOM_B64 = base64.b64encode(bytes(_RND.getrandbits(8) for _ in range(33))).decode()

# (rule, text, the secret in it): the output must be the text with exactly the secret replaced, so whatever
# surrounds it (URL user, header name, assignment key, quotes) survives.
CASES: list[tuple[str, str, str]] = [
    ("anthropic-key", f"export ANTHROPIC_API_KEY={ANT}", ANT),
    ("anthropic-key", f"client = Anthropic(api_key='{ANT}')", ANT),
    ("openai-key", f'OPENAI_API_KEY="{OAI}" python run.py', OAI),
    ("openai-key", f"the old key {OAI_LEGACY} was revoked", OAI_LEGACY),
    ("aws-access-key", f"aws_access_key_id = {AKID}", AKID),
    ("aws-access-key", f'"AccessKeyId": "{ASID}",', ASID),
    ("aws-secret", f"aws_secret_access_key = {AWS_SECRET}", AWS_SECRET),
    ("aws-secret", f'"SecretAccessKey": "{AWS_SECRET}"', AWS_SECRET),
    ("aws-secret", f"AWS_SECRET_ACCESS_KEY={AWS_SECRET} terraform apply", AWS_SECRET),
    ("github-token", f"GH_TOKEN={GHP} gh pr list", GHP),
    ("github-token", f"git clone https://x-access-token:{GHS}@github.com/acme/api.git", GHS),
    ("github-token", f"fine-grained token {GH_PAT}", GH_PAT),
    ("slack-token", f"SLACK_BOT_TOKEN: {SLACK}", SLACK),
    ("slack-webhook", f"curl -X POST https://hooks.slack.com/services/{SLACK_HOOK_PATH} -d @msg.json",
     SLACK_HOOK_PATH),
    ("google-api-key", f"https://maps.googleapis.com/maps/api/geocode/json?key={GOOGLE}&address=Paris", GOOGLE),
    ("stripe-key", f"stripe.api_key = '{STRIPE_LIVE}'", STRIPE_LIVE),
    ("stripe-key", f"STRIPE_KEY={STRIPE_RESTRICTED}", STRIPE_RESTRICTED),
    ("private-key", f"$ cat deploy.pem\n{PEM_RSA}\n$ chmod 600 deploy.pem", PEM_RSA),
    # JSON-escaped, as in a service-account file: the assigned value (the key and its final newline) goes.
    ("private-key", f"{{\"private_key\": \"{PEM_OPENSSH.replace(chr(10), chr(92) + 'n')}\\n\"}}",
     PEM_OPENSSH.replace("\n", "\\n") + "\\n"),
    ("jwt", f"Cookie: session={JWT}; Path=/; HttpOnly", JWT),
    ("url-password", f"pip install --index-url https://deploy:{PW}@pypi.acme.dev/simple/ acme", PW),
    ("dsn-password", f"DATABASE_URL=postgres://app:{PW}@db.internal:5432/app", PW),
    ("dsn-password", f"engine = create_engine('postgresql+psycopg://app:{PW2}@localhost/app')", PW2),
    ("dsn-password", f"mysql://root:{PW2}@127.0.0.1:3306/shop", PW2),
    ("dsn-password", f"MONGO_URI=mongodb+srv://admin:{PW2}@cluster0.x1y2z.mongodb.net/?retryWrites=true", PW2),
    ("dsn-password", f"redis://:{PW2}@cache:6379/0", PW2),
    ("assignment", f"PASSWORD={PW}", PW),
    ("assignment", f"export DB_PASSWORD={PW2}", PW2),
    ("assignment", f"api_key: {PW2}\nregion: eu-west-1", PW2),
    ("assignment", f'token = "{PW}"', PW),
    ("assignment", f'{{"user": "admin", "password": "{PW}"}}', PW),
    ("assignment", f"secret={PW2}&client=web", PW2),
    ("assignment", f"  POSTGRES_PASSWORD: {PW2}", PW2),
    ("assignment", f"**Password:** {PW2}", PW2),
    ("assignment", f'{{\\"password\\": \\"{PW2}\\"}}', PW2),
    ("assignment", f"PASSWORD={PCT_PW}", PCT_PW),  # `%` can start a password, not only a %VAR% reference
    ("bearer", f"Authorization: Bearer {BEARER}", BEARER),
    ("bearer", f'curl -H "Authorization: Bearer {BEARER}" https://api.acme.dev/v1/me', BEARER),
    ("basic-auth", f"Authorization: Basic {BASIC}", BASIC),
    ("entropy", f"the webhook signing secret is {RANDOM_TOKEN} (rotate monthly)", RANDOM_TOKEN),
    ("entropy", f"blob {RANDOM_B64} end", RANDOM_B64),
]


@pytest.mark.parametrize(("rule", "text", "secret"), CASES, ids=[f"{r}-{i}" for i, (r, _, _) in enumerate(CASES)])
def test_each_rule_replaces_exactly_the_secret(rule: str, text: str, secret: str) -> None:
    assert text.count(secret) == 1
    red = Redactor(KEY)
    out = red.text(text)
    assert out == text.replace(secret, placeholder(KEY, rule, secret))
    assert red.counts == collections.Counter({rule: 1})
    # Long strings skip the one-search gate that short ones go through: same answer.
    pad = "\nThe retry loop reads the clock twice; the test fails when a tick falls between them.\n" * 8
    assert len(pad) > 512 and red.text(pad + text + pad) == pad + out + pad


def test_every_rule_has_a_case() -> None:
    assert {r for r, _, _ in CASES} == set(RULES)


def test_assignment_keywords_and_their_reversed_pattern_agree() -> None:
    for keyword in redact._KEYWORDS:
        assert re.fullmatch(redact._REV_KEYWORDS, keyword[::-1]), keyword
        key = keyword.decode().upper()
        assert Redactor(KEY).text(f"{key}={PW2}") == f"{key}={placeholder(KEY, 'assignment', PW2)}"


def test_offsets_survive_non_ascii_text_and_lone_surrogates() -> None:
    text = f"café ✓ 日本語 \ud800 token={PW2} — 🙂 {GHP} fin"
    out = Redactor(KEY).text(text)
    assert out == (text.replace(PW2, placeholder(KEY, "assignment", PW2))
                   .replace(GHP, placeholder(KEY, "github-token", GHP)))


# ------------------------------------------------------------------------------------------------ placeholders

def test_placeholders_are_deterministic_and_keyed() -> None:
    p = placeholder(KEY, "github-token", GHP)
    digest = hmac.new(KEY, GHP.encode(), hashlib.sha256).hexdigest()[:8]
    assert p == f"[REDACTED:github-token:{digest}]" == placeholder(KEY, "github-token", GHP)
    assert placeholder(OTHER_KEY, "github-token", GHP) != p
    assert placeholder(KEY, "github-token", GHS) != p
    text = f"first {GHP}, again {GHP}"
    a, b, c = Redactor(KEY).text(text), Redactor(KEY).text(text), Redactor(OTHER_KEY).text(text)
    assert a == b == f"first {p}, again {p}"
    assert c != a and GHP not in c


def test_an_empty_key_is_refused() -> None:
    with pytest.raises(ValueError):
        Redactor(b"")


# ------------------------------------------------------------------------------------------------ idempotence

def test_redacting_twice_changes_nothing() -> None:
    red = Redactor(KEY)
    for _, text, _ in CASES:
        once = red.text(text)
        before = red.counts.copy()
        assert red.text(once) == once
        assert red.counts == before  # a placeholder is never re-redacted, by the entropy rule or any other
        assert scan(once) == []


def test_mixed_text_is_redacted_idempotently() -> None:
    rnd = random.Random(2)
    pieces = [t for _, t, _ in CASES] + ["ok", "def f(x):", "=", ":", '"', "'", "/home/dev/x.py", "é", "\n", " "]
    red = Redactor(KEY)
    for _ in range(300):
        text = rnd.choice(["", " ", "\n", "=", ":", '"']).join(rnd.choice(pieces) for _ in range(rnd.randint(1, 6)))
        once = red.text(text)
        assert red.text(once) == once, text
        assert scan(once) == [], text


def test_fragments_glued_at_random_are_redacted_idempotently() -> None:
    # Secrets abutting keys, quotes, operators, placeholders and each other: a second pass must find nothing.
    rnd = random.Random(3)
    atoms = ["pass", "word", "pwd", "token", "secret", "key", "api_", "auth", "Bearer ", "basic ", "=", ":", " ", '"',
             "'", "\\", "\n", "://", "@", "/", "-", "=>", "$", "{", "}", "[", "]", "(", ")", "*", ".", ",", "sk-",
             "ant-", "ghp_", "AKIA", "AIza", "eyJ", "xoxb-", "k_live_", "s", "r", "é", "PRIVATE KEY-----",
             "-----BEGIN ", "-----END ", "[REDACTED:", "sha256:", "h1:", "]", "hooks.slack.com/services/"]
    red = Redactor(KEY)
    for _ in range(3000):
        text = "".join(rnd.choice(atoms) if rnd.random() < 0.8 else rand(rnd.choice([4, 10, 20, 33, 40]),
                                                                         ALNUM + "+/_-")
                       for _ in range(rnd.randint(1, 20)))
        once = red.text(text)
        assert red.text(once) == once, text
        assert scan(once) == [], text


def test_text_without_secrets_is_returned_as_is() -> None:
    text = "Read tests/test_client.py and fix the retry backoff; the token budget is 4096."
    assert Redactor(KEY).text(text) is text


# ------------------------------------------------------------------------------------------------ walk and counts

def test_walk_copies_structure_and_redacts_only_string_values() -> None:
    obj = {
        "role": "user",
        "n": 3, "ratio": 0.5, "ok": True, "none": None,
        GHP: "a dict key is left as it is",
        "content": [
            {"type": "text", "text": f"use {ANT} please"},
            {"type": "tool_use", "input": {"command": f"PGPASSWORD={PW2} psql", "timeout": 30}},
            [f"nested {AKID}", 7, None, [False]],
        ],
    }
    before = copy.deepcopy(obj)
    red = Redactor(KEY)
    out = red.walk(obj)
    assert obj == before  # the input is not modified
    assert out is not obj and out["content"] is not obj["content"]
    assert out["n"] == 3 and out["ratio"] == 0.5 and out["ok"] is True and out["none"] is None
    assert list(out) == list(obj) and out[GHP] == "a dict key is left as it is"
    assert out["content"][0] == {"type": "text", "text": f"use {placeholder(KEY, 'anthropic-key', ANT)} please"}
    assert out["content"][1]["input"] == {"command": f"PGPASSWORD={placeholder(KEY, 'assignment', PW2)} psql",
                                          "timeout": 30}
    assert out["content"][2] == [f"nested {placeholder(KEY, 'aws-access-key', AKID)}", 7, None, [False]]
    assert red.counts == collections.Counter({"anthropic-key": 1, "assignment": 1, "aws-access-key": 1})
    assert red.walk("plain") == "plain" and red.walk(5) == 5 and red.walk(None) is None


def test_counts_add_up_across_calls() -> None:
    red = Redactor(KEY)
    found: collections.Counter[str] = collections.Counter()
    for _, text, _ in CASES * 2:
        found.update(m.group(1) for m in PLACEHOLDER.finditer(red.text(text)))
    assert red.counts == found
    assert sum(red.counts.values()) == 2 * len(CASES)


# ------------------------------------------------------------------------------------------------ scan

def test_scan_finds_what_is_left_with_a_masked_excerpt() -> None:
    left = scan(f"line one\nexport ANTHROPIC_API_KEY={ANT}\npassword: {PW}\n")
    assert [r for r, _ in left] == ["anthropic-key", "assignment"]
    for (_, excerpt), secret in zip(left, (ANT, PW), strict=True):
        assert secret not in excerpt and len(excerpt) < 32


def test_scan_ignores_placeholders() -> None:
    red = Redactor(KEY)
    doc = "\n".join(red.text(t) for _, t, _ in CASES)
    assert PLACEHOLDER.search(doc) and scan(doc) == []
    for rule in RULES:
        assert scan(f"x {placeholder(KEY, rule, 'x')} y") == []
        assert scan(f'password: "{placeholder(KEY, rule, "x")}"\ntoken={placeholder(KEY, rule, "y")}') == []


# ------------------------------------------------------------------------------------------------ false positives

CLEAN = [
    hashlib.sha1(b"a commit").hexdigest(),
    f"commit {hashlib.sha1(b'x').hexdigest()}\nMerge: {hashlib.sha1(b'y').hexdigest()[:7]}",
    hashlib.sha256(b"a blob").hexdigest(),
    f"sha256:{hashlib.sha256(b'layer').hexdigest()}",
    f"integrity sha512-{base64.b64encode(hashlib.sha512(b'pkg').digest()).decode()}",
    str(uuid.UUID(int=_RND.getrandbits(128))),
    f"session {uuid.UUID(int=_RND.getrandbits(128))} resumed",
    "msg_01LoreAq7Kp2VfD8sYtN3pXa toolu_01LoreReadQ7mZ2vK9xW4pT req_011LoreA1xYb9",
    '{"id":"msg_01' + rand(22) + '","requestId":"req_011' + rand(21) + '","tool_use_id":"toolu_01' + rand(22) + '"}',
    "srvtoolu_01" + rand(22) + " chatcmpl-" + rand(29) + " call_" + rand(24),
    "/home/dev/projects/acme_api.v2/tests/test_client.py",
    "~/.claude/projects/-home-dev-projects-acme-api-v2/7f3c9a2e-4b1d-4e8a-9c6f-2d5e8b1a0c34.jsonl",
    "/Users/alex/src/billing-service/src/handlers/authToken2/RefreshTokenHandler.ts",
    "C:\\Users\\alex\\AppData\\Local\\Programs\\Python\\Python311\\python.exe",
    "def get_token(self):",
    "password_hash = hash(pw)",
    "token = tokens[i]",
    'api_key=os.environ["API_KEY"]',
    "api_key = os.getenv('OPENAI_API_KEY')",
    "token: str",
    "password: Optional[str] = None",
    "def login(user: str, password: str) -> Token:",
    "const token = await this.auth.getToken();",
    "if token == expected_token:",
    "token := strings.TrimSpace(line)",
    "max_tokens=4096, temperature=0",
    '"usage": {"input_tokens": 9, "output_tokens": 187, "cache_read_input_tokens": 11840}',
    'logger.debug("token=%s", token)',
    "password = ${DB_PASSWORD}",
    "PASSWORD=$PGPASSWORD",
    "token: <your-token-here>",
    "password: ****",
    "secret: null",
    "api_key=None",
    "auth: true",
    "author: Jane Doe",
    "PWD=/home/dev/projects/acme",
    "Authorization: Bearer $TOKEN",
    "Authorization: Bearer <token>",
    "headers = {'Authorization': f'Bearer {token}'}",
    "Bearer authentication is configured in settings.py",
    "postgres://app:${DB_PASSWORD}@db:5432/app",
    'f"postgresql://{user}:{password}@{host}/{db}"',
    "http://localhost:8080/api/v1/users?page=2",
    "git@github.com:acme/api.git",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + rand(43) + " dev@laptop",
    "test_retry_backoff_when_server_returns_503_twice_then_succeeds",
    "handleOAuth2CallbackForGoogleProviderWithPKCE(request)",
    "class VeryLongTypeScriptInterfaceName2ForTheBillingServiceResponsePayload {}",
    "ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'",
    f"golang.org/x/net v0.17.0/go.mod h1:{base64.b64encode(hashlib.sha256(b'mod').digest()).decode()}",
    f'<img src="data:image/png;base64,{base64.b64encode(bytes(_RND.getrandbits(8) for _ in range(60))).decode()}">',
    "tests/test_client.py::test_retry_backoff PASSED                                   [ 50%]",
    "=" * 80 + "\n" + "_" * 40 + " test_login " + "_" * 40,
    "claude-sonnet-4-5-20250929 claude-haiku-4-5-20251001 gpt-5-codex",
    "The token budget ran out, so the password reset flow and the secret rotation job were split into two PRs.",
]


@pytest.mark.parametrize("text", CLEAN)
def test_no_false_positive(text: str) -> None:
    red = Redactor(KEY)
    assert red.text(text) == text
    assert not red.counts and scan(text) == []


def _without_signatures(obj: object) -> object:
    # Importers drop thinking signatures (opaque integrity tokens): they never reach the redactor.
    if isinstance(obj, dict):
        return {k: _without_signatures(v) for k, v in obj.items() if k != "signature"}
    if isinstance(obj, list):
        return [_without_signatures(v) for v in obj]
    return obj


@pytest.mark.parametrize("name", ["claude_code_session.jsonl", "codex_rollout.jsonl", "chatgpt_conversations.json",
                                  "gemini_takeout.json"])
def test_fixture_transcripts_need_no_redaction(name: str) -> None:
    raw = (FIXTURES / name).read_text(encoding="utf-8")
    docs = [json.loads(line) for line in raw.splitlines()] if name.endswith(".jsonl") else json.loads(raw)
    docs = _without_signatures(docs)
    red = Redactor(KEY)
    assert red.walk(docs) == docs
    assert not red.counts
    assert scan(json.dumps(docs, ensure_ascii=False)) == []


def test_generated_corpus_only_redacts_quoted_config_values(tmp_path: Path) -> None:
    # The generator's code and shell pools hold paths, ids, hashes, identifiers, YAML and tracebacks; its YAML
    # pool also writes lines like `memory_password: "<word>"`, which LORE redacts on purpose (a quoted value
    # assigned to a password/secret/token/auth key is treated as a credential whatever it looks like).
    root = generate(tmp_path / "corpus", sessions=4, mean_kb=80, seed=11)
    red = Redactor(KEY)
    for path in sorted(root.rglob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                message = json.loads(line).get("message")
            except ValueError:
                continue  # the generator's deliberately truncated lines
            if isinstance(message, dict):
                for text in _strings(_without_signatures(message.get("content"))):
                    out = red.text(text)
                    for m in PLACEHOLDER.finditer(out):
                        assert m.group(1) == "assignment"
                        assert re.search(r"(password|secret|token|auth): \"$", out[: m.start()]), out[: m.end()]
    assert set(red.counts) <= {"assignment"}


def _strings(obj: object) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in _strings(v)]
    if isinstance(obj, list):
        return [s for v in obj for s in _strings(v)]
    return []


def test_sources_hold_no_secret_shaped_literal() -> None:
    for rel in ("services/lore/redact.py", "tests/test_lore_redact.py", "benchmarks/lore_redact.py"):
        assert scan((ROOT / rel).read_text(encoding="utf-8")) == [], rel


# ------------------------------------------------------------------------------------------------ the key file

def test_load_key_creates_a_private_key_once(tmp_path: Path) -> None:
    path = tmp_path / "home" / "lore" / "redaction.key"
    old = os.umask(0)  # the mode must not depend on the umask
    try:
        key = load_key(path)
    finally:
        os.umask(old)
    assert len(key) == 32 and path.read_bytes() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key(path) == key
    assert [p.name for p in path.parent.iterdir()] == ["redaction.key"]  # no temporary file left behind
    assert load_key(tmp_path / "other.key") != key


def test_a_truncated_key_is_refused_rather_than_replaced(tmp_path: Path) -> None:
    path = tmp_path / "redaction.key"
    path.write_bytes(b"short")
    with pytest.raises(ValueError):
        load_key(path)
    assert path.read_bytes() == b"short"
