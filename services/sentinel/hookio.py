"""The hook runtime: what `hooks/pre_tool_use.py` and `hooks/post_tool_use.py` do once they are running.

Stdlib only and light on imports: this runs on every agent tool call.

Deadline: `run_pre` keeps a 1 s SIGALRM timer armed (`hooks/pre_tool_use.py` arms it before any import). When it
fires, the handler writes the block line, logs the block if the log is free at that instant, and leaves with
`os._exit(2)`. The regular-expression engine checks for signals, so a pathological pattern cannot outlast it.
An `approve` rule that waits for the admin extends the timer by its wait.

Pre (`run_pre`): read and validate Claude Code's hook JSON from stdin, judge the call under the policy, log
it (hash-chained audit line) and only then answer:
- allow: exit 0, no output;
- warn:  exit 0 with `{"hookSpecificOutput": {..."permissionDecision": "ask"...}}` where the permission mode can
  prompt (default, acceptEdits, plan), else `{"systemMessage": "SENTINEL warning [rule]: reason"}`;
- block: exit 2 and one line on stderr,
  `SENTINEL blocked [rule-id]: reason. Safer alternative. To allow once, approve code XXXXXX.`
  (no approval sentence for fail-closed blocks, which can never be approved).
Malformed input, a policy that does not load, an internal error or an audit line that cannot be written
all block ("fail closed"). A single-use approval from the admin (`approvals.py`) turns a block into an
allow; an `approve` rule may wait `SENTINEL_APPROVAL_WAIT` seconds for one.

Post (`run_post`): log the outcome of the call; always exit 0.

Who answers: `run_pre` is the in-process path (read fd 0, write fds 1 and 2). `judge_request` is the same run
for bytes already read; it returns (exit code, stdout, stderr) and is what the warm judge daemon
(`daemon.py`) calls in a forked child per request, after putting the client's environment into `os.environ`.

Test-only switch: `SENTINEL_TEST_SLEEP=<seconds>` makes the pre hook sleep right before judging, so tests can
hit the deadline. It can only ever turn an answer into a block.
"""

from __future__ import annotations

import _signal  # the C module behind `signal`, which only adds enums (and ~0.7 ms)
import json
import os
import time

# Typing names are for the type checker only: importing `typing` costs the hook ~3 ms (mypy honours this flag).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from .model import ToolCall, Verdict

    Deliver = Callable[[int, bytes, bytes], None]  # (exit code, stdout, stderr): hand an answer to the caller

MAX_INPUT = 1 << 20  # 1 MiB
DEADLINE = 1.0  # seconds from the start of the hook process (SIGALRM, see _Pre.arm)
PROMPTING_MODES = frozenset({"default", "acceptEdits", "plan"})
SUBJECT_LIMIT = 500
REASON_LIMIT = 1000
POLL = 0.1  # seconds between looks at the approvals directory while waiting

BAD_INPUT = "sentinel-bad-input"
INTERNAL = "sentinel-internal-error"
POLICY = "sentinel-policy-error"
DEADLINE_RULE = "sentinel-deadline"
AUDIT = "sentinel-audit-error"

ALTERNATIVES = {
    BAD_INPUT: "Retry the call with well-formed hook input",
    INTERNAL: "The call stays blocked until SENTINEL is fixed; run `aistack doctor` and report the error",
    POLICY: "Fix the policy file (check it with `aistack sentinel check-policy`) or remove it",
    DEADLINE_RULE: "Split the call into smaller, simpler steps and retry",
    AUDIT: "Fix the audit directory (it must be writable; see SENTINEL_AUDIT_DIR), then retry",
}
_STR_FIELDS = ("session_id", "tool_use_id", "cwd", "permission_mode", "transcript_path", "hook_event_name")
_SUBJECT_KEYS = ("command", "file_path", "notebook_path", "path", "url", "sql", "query", "pattern", "prompt")


class BadInput(Exception):
    """The hook input is not what Claude Code sends; the message says what is wrong."""


# ---------------------------------------------------------------------------------------------------- input

def read_stdin(limit: int = MAX_INPUT, fd: int = 0, prefix: bytes = b"") -> tuple[bytes, str]:
    """(stdin, sha256 hex of all of it). Past `limit` + 1 bytes (enough to tell that it is too big) the rest is
    only hashed, never kept, so the log can name even an oversized input exactly.

    `prefix` is what the caller (the hook client) already read from `fd`; it counts as the start of the input."""
    from .audit import sha256

    h = sha256()
    h.update(prefix)
    chunks: list[bytes] = [prefix[: limit + 1]]
    kept = len(chunks[0])
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        h.update(chunk)
        if kept <= limit:
            chunks.append(chunk[: limit + 1 - kept])
            kept += len(chunks[-1])
    return b"".join(chunks), str(h.hexdigest())


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise BadInput(f"duplicate key {key[:40]!r}")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise BadInput(f"{name} is not valid JSON")


def _has_nul(obj: Any) -> bool:
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def parse_payload(raw: bytes, *, limit: int = MAX_INPUT) -> dict[str, Any]:
    """The validated hook payload, or `BadInput` naming the first problem."""
    if len(raw) > limit:
        raise BadInput(f"input is over {limit // (1 << 20)} MiB")
    if not raw.strip():
        raise BadInput("input is empty")
    if b"\x00" in raw:
        raise BadInput("input contains NUL bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"input is not UTF-8 (byte {exc.start})") from None
    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except BadInput:
        raise
    except RecursionError:
        raise BadInput("input is nested too deeply") from None
    except ValueError as exc:
        raise BadInput(f"input is not JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise BadInput(f"input is a JSON {type(obj).__name__}, not an object")
    if "\\u0000" in text and _has_nul(obj):
        raise BadInput("input contains NUL characters")
    name = obj.get("tool_name")
    if name is None:
        raise BadInput("tool_name is missing")
    if not isinstance(name, str) or not name.strip():
        raise BadInput("tool_name is not a non-empty string")
    tool_input = obj.get("tool_input")
    if tool_input is None:
        raise BadInput("tool_input is missing")
    if not isinstance(tool_input, dict):
        raise BadInput("tool_input is not an object")
    for key in _STR_FIELDS:
        if obj.get(key) is not None and not isinstance(obj[key], str):
            raise BadInput(f"{key} is not a string")
    return obj


def subject_of(tool_name: str, tool_input: dict[str, Any]) -> str:
    """The command or path a call is about (for the log and the alert; not redacted here)."""
    if tool_name in ("Grep", "Glob"):
        parts = [v for k in ("pattern", "path", "glob") if isinstance(v := tool_input.get(k), str) and v]
        return " ".join(parts)
    for key in _SUBJECT_KEYS:
        value = tool_input.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


# --------------------------------------------------------------------------------------------------- output

def sentence(text: str) -> str:
    """One line, ending in a full stop."""
    text = " ".join(str(text).split())
    if text and text[-1] not in ".!?":
        text += "."
    return text


def block_line(rule_id: str, reason: str, alternative: str = "", code: str | None = None) -> str:
    """`SENTINEL blocked [rule-id]: reason. Safer alternative. To allow once, approve code XXXXXX.`"""
    line = f"SENTINEL blocked [{rule_id}]: {sentence(reason) or 'Blocked by policy.'}"
    if alternative and alternative.strip():
        line += f" {sentence(alternative)}"
    if code:
        line += f" To allow once, approve code {code}."
    return line


def warn_text(rule_id: str, reason: str, alternative: str = "") -> str:
    text = f"SENTINEL warning [{rule_id}]: {sentence(reason) or 'Check this call.'}"
    if alternative and alternative.strip():
        text += f" {sentence(alternative)}"
    return text


def warn_output(rule_id: str, reason: str, alternative: str, permission_mode: str) -> tuple[dict[str, Any], str]:
    """The JSON a warn prints on stdout and the audit decision (`ask` where the mode can prompt, else `warn`)."""
    text = warn_text(rule_id, reason, alternative)
    if permission_mode in PROMPTING_MODES:
        return ({"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "ask",
                                        "permissionDecisionReason": text}}, "ask")
    return {"systemMessage": text}, "warn"


def _line(text: str) -> bytes:
    return (text + "\n").encode("utf-8", "backslashreplace")


def write_all(fd: int, data: bytes) -> None:
    while data:
        n = os.write(fd, data)
        data = data[n:]


def write_answer(code: int, out: bytes, err: bytes) -> None:
    """The in-process way to answer: stdout and stderr of this very process."""
    write_all(1, out)
    write_all(2, err)


def _cut(text: str, limit: int = REASON_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ------------------------------------------------------------------------------------------------ pre hook

class _Pre:
    """One PreToolUse run. Every exit path logs first, then answers."""

    def __init__(self, started: float, deliver: Deliver = write_answer,
                 announce_wait: Callable[[float], None] | None = None) -> None:
        self.started = started
        # The answer is collected here and handed back by the caller; only the deadline handler, which never
        # returns, hands its answer over itself (`deliver`) before logging it.
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.deliver = deliver
        self.announce_wait = announce_wait  # tells a waiting client that the deadline moves (daemon only)
        self.read_error: OSError | None = None
        self.raw = b""
        self.sha = ""
        self.payload: dict[str, Any] = {}
        self.call: ToolCall | None = None
        self.call_hash = ""  # computed once: it serialises the whole input
        self.subject = ""
        self.policy_hash: str | None = None

    # -- plumbing

    def arm(self, seconds: float) -> None:
        """(Re)arm the deadline: `seconds` from now, or what is left of the first second if that is later."""
        left = self.started + DEADLINE - time.monotonic()
        _signal.signal(_signal.SIGALRM, self.expired)
        _signal.setitimer(_signal.ITIMER_REAL, max(seconds, left, 0.001))

    def expired(self, signum: int, frame: object) -> None:
        """SIGALRM: answer block at once, log it if that can be done quickly, leave with exit code 2."""
        detail = f"SENTINEL could not judge this call within its {DEADLINE:g} s deadline"
        _signal.signal(_signal.SIGALRM, _exit_2)  # bound the answer and the logging below
        _signal.setitimer(_signal.ITIMER_REAL, 0.3)
        try:
            try:  # noqa: SIM105 - contextlib is not worth its import on the hook path
                self.deliver(2, b"", _line(block_line(DEADLINE_RULE, detail, ALTERNATIVES[DEADLINE_RULE])))
            except Exception:
                pass  # the exit code alone still blocks; log the block all the same
            p = self.payload
            watchdog_block(self.started, {
                "session_id": p.get("session_id"), "tool_use_id": p.get("tool_use_id"),
                "tool_name": p.get("tool_name"), "permission_mode": p.get("permission_mode"), "cwd": p.get("cwd"),
                "subject": self.subject, "input_sha256": self.sha, "call_hash": self.call_hash,
                "policy_hash": self.policy_hash}, detail)
        finally:
            os._exit(2)

    def say(self, fd: int, text: str) -> None:
        (self.stdout if fd == 1 else self.stderr).extend(_line(text))

    def base(self) -> dict[str, Any]:
        p = self.payload
        return {"event": "pre", "session_id": p.get("session_id"), "tool_use_id": p.get("tool_use_id"),
                "tool_name": p.get("tool_name"), "permission_mode": p.get("permission_mode")}

    def audit(self, decision: str, rule_id: str | None, reason: str | None, **extra: Any) -> str | None:
        """Write the audit line; returns None, or the problem when the line could not be written."""
        from . import audit
        from .redact import redact

        rec = self.base()
        rec.update(decision=decision, rule_id=rule_id, reason=_cut(redact(reason)) if reason else reason,
                   cwd=self.payload.get("cwd"), subject=self.subject, input_sha256=self.sha,
                   latency_ms=round((time.monotonic() - self.started) * 1000, 2), policy_hash=self.policy_hash)
        if self.call_hash:
            rec["call_hash"] = self.call_hash
        rec.update({k: v for k, v in extra.items() if v is not None})
        try:
            audit.append(rec)
        except audit.AuditError as exc:
            return str(exc)
        except Exception as exc:
            return f"cannot write audit log: {type(exc).__name__}: {exc}"
        return None

    def alert(self, rule_id: str, severity: str, reason: str, alternative: str, approvable: bool) -> str | None:
        """Spool an alert for the bot; returns its id (None if it could not be written: the block stands)."""
        from .redact import redact
        from .spool import new_id, write_alert_file

        call_hash = self.call_hash
        rec = {"id": new_id(), "call_hash": call_hash, "code": call_hash[:6].upper() if approvable else "",
               "session_id": self.payload.get("session_id"), "tool_use_id": self.payload.get("tool_use_id"),
               "tool_name": self.payload.get("tool_name"), "rule_id": rule_id, "severity": severity,
               "reason": _cut(redact(reason)), "alternative": alternative, "subject": self.subject,
               "cwd": self.payload.get("cwd"), "approvable": approvable}
        try:
            write_alert_file(rec)
        except Exception:
            return None
        return str(rec["id"])

    # -- answers

    def block(self, rule_id: str, reason: str, alternative: str, *, code: str | None,
              severity: str = "block", fail_closed: bool = False, **extra: Any) -> int:
        alert_id = self.alert(rule_id, severity, reason, alternative, approvable=code is not None)
        problem = self.audit("block", rule_id, reason, code=code, severity=severity if severity != "block" else None,
                             alert_id=alert_id, fail_closed=True if fail_closed else None, **extra)
        line = block_line(rule_id, reason, alternative, code)
        if problem:
            line += f" (Also: {sentence(problem)})"
        self.say(2, line)
        return 2

    def fail_closed(self, rule_id: str, reason: str) -> int:
        return self.block(rule_id, reason, ALTERNATIVES.get(rule_id, ""), code=None, fail_closed=True)

    def allow(self, rule_id: str | None = None, reason: str | None = None, **extra: Any) -> int:
        problem = self.audit("allow", rule_id, reason, **extra)
        if problem:
            return self.refuse_unlogged(problem)
        return 0

    def refuse_unlogged(self, problem: str) -> int:
        # The call could not be logged: block. Try to spool an alert so the admin learns about the directory.
        self.alert(AUDIT, "block", problem, ALTERNATIVES[AUDIT], approvable=False)
        self.say(2, block_line(AUDIT, problem, ALTERNATIVES[AUDIT]))
        return 2

    # -- the run

    def run(self) -> int:
        if self.read_error is not None:
            exc = self.read_error
            return self.fail_closed(BAD_INPUT, f"cannot read the hook input ({exc.strerror or exc})")
        try:
            self.payload = parse_payload(self.raw)
        except BadInput as exc:
            self.payload = {}
            return self.fail_closed(BAD_INPUT, f"malformed hook input: {exc}")

        from .model import SEVERITIES, ToolCall
        from .paths import user_policy_path
        from .redact import redact_subject

        p = self.payload
        self.call = call = ToolCall(tool_name=p["tool_name"], tool_input=p["tool_input"], cwd=p.get("cwd") or "",
                                    session_id=p.get("session_id") or "", tool_use_id=p.get("tool_use_id") or "",
                                    permission_mode=p.get("permission_mode") or "default")
        self.call_hash = call.call_hash()
        self.subject = redact_subject(subject_of(call.tool_name, call.tool_input), SUBJECT_LIMIT)

        from . import policy as policy_mod

        user_path = user_policy_path()
        try:
            policy = policy_mod.load_policy(user_path)
        except policy_mod.PolicyError as exc:
            msg = " ".join(str(exc).split())
            named = [p for p in (user_path, getattr(policy_mod, "DEFAULT_POLICY", None)) if p and str(p) in msg]
            where = user_path or getattr(policy_mod, "DEFAULT_POLICY", "the default policy")
            return self.fail_closed(POLICY, msg if named else f"{where}: {msg}")
        self.policy_hash = getattr(policy, "hash", None)

        sleep = os.environ.get("SENTINEL_TEST_SLEEP")
        if sleep:
            time.sleep(float(sleep))

        from .judge import judge

        verdict: Verdict = judge(call, policy)
        decision = verdict.decision
        if decision not in SEVERITIES:
            raise ValueError(f"the judge returned an unknown decision {decision!r}")
        top = verdict.top
        rule_id = top.rule_id if top else "unknown"
        reason = top.reason if top else ""
        alternative = top.alternative if top else ""

        if decision == "allow":
            return self.allow()
        if decision == "warn":
            output, logged = warn_output(rule_id, reason, alternative, call.permission_mode)
            problem = self.audit(logged, rule_id, reason)
            if problem:
                return self.refuse_unlogged(problem)
            self.say(1, json.dumps(output, ensure_ascii=False))
            return 0
        return self.escalate(verdict, decision, rule_id, reason, alternative)

    def escalate(self, verdict: Verdict, decision: str, rule_id: str, reason: str, alternative: str) -> int:
        """block or approve: a valid single-use approval allows; an approve rule may wait for one."""
        from . import approvals
        from .paths import approval_wait

        if not verdict.approvable:
            return self.block(rule_id, reason, alternative, code=None, severity=decision, fail_closed=True)
        call_hash = self.call_hash
        code = call_hash[:6].upper()
        approver = approvals.consume(call_hash)
        if approver:
            return self.allow(rule_id, reason, approved_by=approver, severity=decision, code=code)
        wait = approval_wait() if decision == "approve" else 0.0
        if wait <= 0:
            return self.block(rule_id, reason, alternative, code=code, severity=decision)

        # Tell the admin now, then wait for the button (with the deadline pushed back by the wait).
        alert_id = self.alert(rule_id, decision, reason, alternative, approvable=True)
        if self.announce_wait is not None:
            self.announce_wait(wait + DEADLINE)
        self.arm(wait + DEADLINE)
        end = time.monotonic() + wait
        outcome: str | None = None
        while True:
            outcome = approvals.decision(call_hash)
            if outcome == approvals.ALLOW:
                approver = approvals.consume(call_hash)
                if approver:
                    return self.allow(rule_id, reason, approved_by=approver, severity=decision, code=code,
                                      alert_id=alert_id, waited_ms=round((wait - (end - time.monotonic())) * 1000))
                outcome = None  # raced away or expired: keep waiting
            if outcome == approvals.DENY:
                approvals.clear_denial(call_hash)
                break
            left = end - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(POLL, left))
        why = "the admin kept it blocked" if outcome == approvals.DENY else f"no decision within {wait:g} s"
        problem = self.audit("block", rule_id, f"{reason} ({why})", code=code, severity=decision, alert_id=alert_id)
        line = block_line(rule_id, f"{sentence(reason)} Approval: {why}", alternative, code)
        if problem:
            line += f" (Also: {sentence(problem)})"
        self.say(2, line)
        return 2


def _exit_2(signum: int, frame: object) -> None:
    os._exit(2)


def run_pre(started: float | None = None, prefix: bytes = b"") -> int:
    """The PreToolUse hook in this process (call it from the main thread): read stdin (after `prefix`, which the
    caller already read from it), judge, answer on stdout/stderr. Returns the exit code: 0 (allow, warn) or 2.

    Never raises; when the deadline passes it does not return at all (the process exits 2).
    """
    run = _Pre(time.monotonic() if started is None else started)
    try:
        run.arm(0)
        try:
            run.raw, run.sha = read_stdin(prefix=prefix)
        except OSError as exc:
            run.read_error = exc
    except BaseException as exc:
        run.read_error = OSError(f"{type(exc).__name__}: {exc}")
    code, out, err = _finish(run)
    write_answer(code, out, err)
    return code


def judge_request(raw: bytes, sha: str, started: float, *, deliver: Deliver,
                  announce_wait: Callable[[float], None] | None = None) -> tuple[int, bytes, bytes]:
    """The same run as `run_pre` for an input already read (`sha` = sha256 hex of all of it), under the
    environment in `os.environ`. Returns (exit code, stdout, stderr) and writes nothing itself.

    Like `run_pre` it owns SIGALRM and must run in the main thread of a process that may end: when the deadline
    passes it hands the block to `deliver`, logs it and leaves with `os._exit(2)`. `announce_wait(seconds)` is
    called before an approval wait moves the deadline to `seconds` from then.
    """
    run = _Pre(started, deliver, announce_wait)
    run.raw, run.sha = raw, sha
    try:
        run.arm(0)
    except BaseException as exc:
        run.read_error = OSError(f"{type(exc).__name__}: {exc}")
    return _finish(run)


def _finish(run: _Pre) -> tuple[int, bytes, bytes]:
    try:
        code = run.run()
    except BaseException as exc:
        detail = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        try:
            code = run.fail_closed(INTERNAL, f"internal error ({detail})")
        except BaseException:
            run.say(2, block_line(INTERNAL, f"internal error ({detail})", ALTERNATIVES[INTERNAL]))
            code = 2
    if code not in (0, 2):  # belt and braces: nothing may ever answer Claude Code's "go ahead" (1)
        run.say(2, block_line(INTERNAL, f"internal error (exit code {code!r})", ALTERNATIVES[INTERNAL]))
        code = 2
    return code, bytes(run.stdout), bytes(run.stderr)


def watchdog_block(started: float, info: dict[str, Any], detail: str, rule_id: str = DEADLINE_RULE) -> None:
    """Best-effort audit line and alert for a call the watchdog stopped (never waits for the log's lock).

    `info` is what is known about the call at that moment (maybe nothing).
    """
    from . import audit
    from .spool import new_id, write_alert_file

    rec = {"event": "pre", "session_id": info.get("session_id"), "tool_use_id": info.get("tool_use_id"),
           "tool_name": info.get("tool_name"), "permission_mode": info.get("permission_mode"),
           "decision": "block", "rule_id": rule_id, "reason": detail, "cwd": info.get("cwd"),
           "subject": info.get("subject", ""), "input_sha256": info.get("input_sha256"),
           "latency_ms": round((time.monotonic() - started) * 1000, 2), "policy_hash": info.get("policy_hash"),
           "call_hash": info.get("call_hash"), "fail_closed": True}
    try:  # noqa: SIM105 - contextlib is not worth its import on the hook path
        audit.append(rec, wait=False)
    except Exception:
        pass
    try:  # noqa: SIM105 - contextlib is not worth its import on the hook path
        write_alert_file({"id": new_id(), "call_hash": info.get("call_hash") or "", "code": "",
                          "session_id": info.get("session_id"), "tool_use_id": info.get("tool_use_id"),
                          "tool_name": info.get("tool_name"), "rule_id": rule_id, "severity": "block",
                          "reason": detail, "alternative": ALTERNATIVES.get(rule_id, ""),
                          "subject": info.get("subject", ""), "cwd": info.get("cwd"), "approvable": False})
    except Exception:
        pass


# ----------------------------------------------------------------------------------------------- post hook

def outcome_of(payload: dict[str, Any]) -> tuple[str, str | None]:
    """(`success` | `error` | `interrupted` | `unknown`, a short detail for errors)."""
    if payload.get("hook_event_name") == "PostToolUseFailure" or payload.get("error"):
        err = payload.get("error")
        return "error", str(err)[:200] if err else None
    resp = payload.get("tool_response")
    if resp is None:
        return "unknown", None
    if not isinstance(resp, dict):
        return "success", None
    if resp.get("interrupted") is True:
        return "interrupted", None
    for key in ("is_error", "isError"):
        if resp.get(key):
            content = resp.get("content") or resp.get("error")
            return "error", str(content)[:200] if content else None
    if resp.get("success") is False:
        return "error", None
    for key in ("error", "errors", "error_message", "errorMessage"):
        value = resp.get(key)
        if value:
            return "error", str(value)[:200]
    for key in ("exit_code", "exitCode", "returncode", "return_code"):
        value = resp.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value != 0:
            return "error", f"exit code {value}"
    return "success", None


def _duration(payload: dict[str, Any]) -> float | None:
    resp = payload.get("tool_response")
    for src, key in ((payload, "duration_ms"), (resp, "duration_ms"), (resp, "durationMs")):
        if isinstance(src, dict):
            value = src.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
                return value
    return None


def run_post(started: float | None = None) -> int:
    """The PostToolUse hook: log the outcome. Always returns 0; nothing here may stop the agent."""
    t0 = time.monotonic() if started is None else started
    try:
        from . import audit
        from .redact import redact, redact_subject

        raw, sha = b"", audit.sha256_hex(b"")
        try:  # noqa: SIM105 - contextlib is not worth its import on the hook path
            raw, sha = read_stdin()
        except OSError:
            pass
        rec: dict[str, Any] = {"event": "post", "decision": None, "rule_id": None, "input_sha256": sha}
        try:
            p = parse_payload(raw)
        except BadInput as exc:
            rec.update(outcome="unknown", reason=f"malformed hook input: {exc}", rule_id=BAD_INPUT)
        else:
            outcome, detail = outcome_of(p)
            rec.update(session_id=p.get("session_id"), tool_use_id=p.get("tool_use_id"), tool_name=p["tool_name"],
                       cwd=p.get("cwd"), subject=redact_subject(subject_of(p["tool_name"], p["tool_input"]),
                                                                SUBJECT_LIMIT),
                       outcome=outcome, reason=redact(detail) if detail else None, duration_ms=_duration(p))
        rec["latency_ms"] = round((time.monotonic() - t0) * 1000, 2)
        audit.append(rec)
    except BaseException:
        pass
    return 0
