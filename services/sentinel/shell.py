"""SENTINEL's shell lexer and parser: the commands a shell would actually run. Stdlib only (hook hot path).

`parse(text, cwd, env)` returns a `Parse`: every simple command the line would run (wrappers such as `sudo`,
`env`, `bash -c`, `eval`, `xargs`, `find -exec`, `ssh host …`, `python -c` unwrapped recursively), with its
argv after quote removal and expansion of the variables we can know, the effective working directory, its
redirections, the text fed to its stdin when that text is visible (heredoc, here-string, `echo … |`), the
pipeline upstream, and the wrapper chain (`via`) it was reached through. What cannot be understood is listed in
`Parse.problems`; nesting beyond `MAX_DEPTH` levels is one of those problems.
"""

from __future__ import annotations

import os
import posixpath
import re

MAX_DEPTH = 8
MAX_TOKENS = 100_000  # beyond this the input is "too large to parse" (bounded time on 1 MiB inputs)

_PLAIN = re.compile(r"[^\s'\"\\$`;&|()<>]+")
_DQ_PLAIN = re.compile(r'[^"\\$`]+')
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ASSIGN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(\+?)=")
_OPS = ("&>>", ";;&", "&&", "||", "|&", ";;", ";&", ">>", "<>", "<&", ">&", ">|", "&>",
        ";", "&", "|", "(", ")", "<", ">")
_REDIR_OPS = frozenset({"<", ">", ">>", "<>", "<&", ">&", ">|", "&>", "&>>", "<<", "<<-", "<<<"})
_CONTROL = frozenset({";", "\n", "&", "&&", "||", "|", "|&", ")", ";;", ";&", ";;&", "("})
_KW_SKIP = frozenset({"if", "then", "else", "elif", "do", "while", "until", "!", "{", "time"})
_KW_END = frozenset({"fi", "done", "}", "esac"})
_ANSI = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v", "e": "\x1b",
         "E": "\x1b", "\\": "\\", "'": "'", '"': '"', "?": "?"}

SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "ash", "mksh", "fish", "rbash", "busybox"})
PYTHONS = frozenset({"python", "python2", "python3", "pypy", "pypy3"})
INTERPRETERS = frozenset({"node", "nodejs", "perl", "ruby", "php", "deno", "bun", "lua", "tclsh"}) | PYTHONS


class _TooBig(Exception):
    pass


# ------------------------------------------------------------------------------------------------ tokens

class Tok:
    """A lexer token: a word ('w'), a control operator ('op') or a redirection ('r')."""

    __slots__ = ("body", "fd", "kind", "parts", "quoted_delim", "raw", "target", "v")

    def __init__(self, kind: str, v: str = "", parts: list[tuple] | None = None, raw: str = "") -> None:
        self.kind, self.v, self.parts, self.raw = kind, v, parts or [], raw
        self.fd: str | None = None
        self.target: Tok | None = None
        self.body: str | None = None
        self.quoted_delim = False

    def literal(self) -> str | None:
        """The word's text when it is a single unquoted literal (keywords), else None."""
        if self.kind == "w" and len(self.parts) == 1 and self.parts[0][0] == "s" and not self.parts[0][2]:
            return str(self.parts[0][1])
        return None

    def __repr__(self) -> str:
        return f"Tok({self.kind}, {self.v or self.raw!r})"


class _Budget:
    __slots__ = ("left",)

    def __init__(self, n: int) -> None:
        self.left = n


class _Lexer:
    def __init__(self, s: str, depth: int, budget: _Budget, problems: list[str]) -> None:
        self.s, self.n, self.depth, self.budget, self.problems = s, len(s), depth, budget, problems
        self.pending: list[Tok] = []

    def _tok(self, tok: Tok) -> Tok:
        self.budget.left -= 1
        if self.budget.left < 0:
            raise _TooBig
        return tok

    def lex(self, i: int = 0, closing: bool = False) -> tuple[list[Tok], int]:
        """Tokens from i to the end (or to the `)` closing a `$(`, when `closing`)."""
        s, n = self.s, self.n
        toks: list[Tok] = []
        parens = 0
        while i < n:
            c = s[i]
            if c == " " or c == "\t" or c == "\r":
                i += 1
                continue
            if c == "\\" and s.startswith("\n", i + 1):
                i += 2
                continue
            if c == "\n":
                toks.append(self._tok(Tok("op", "\n")))
                i = self._heredoc_bodies(i + 1)
                continue
            if c == "#":
                j = s.find("\n", i)
                i = n if j < 0 else j
                continue
            if c in ";&|()<>":
                if c in "<>" and s.startswith("(", i + 1):
                    i = self._word(i, toks)
                    continue
                if s.startswith("<<<", i):
                    i = self._redir("<<<", None, i + 3, toks)
                    continue
                if s.startswith("<<", i):
                    op = "<<-" if s.startswith("<<-", i) else "<<"
                    i = self._redir(op, None, i + len(op), toks)
                    continue
                for op in _OPS:
                    if s.startswith(op, i):
                        break
                if op in _REDIR_OPS:
                    i = self._redir(op, None, i + len(op), toks)
                    continue
                if op == "(":
                    parens += 1
                elif op == ")":
                    if closing and parens == 0:
                        return toks, i + 1
                    parens -= 1
                toks.append(self._tok(Tok("op", op)))
                i += len(op)
                continue
            i = self._word(i, toks)
        if closing:
            self.problems.append("unterminated $( … )")
        if self.pending:
            for t in self.pending:
                t.body = ""
            self.pending = []
        return toks, n

    def _heredoc_bodies(self, i: int) -> int:
        s = self.s
        for t in self.pending:
            delim = t.raw
            tabs = t.v == "<<-"
            lines: list[str] = []
            found = False
            while i < self.n:
                j = s.find("\n", i)
                line = s[i:] if j < 0 else s[i:j]
                i = self.n if j < 0 else j + 1
                cmp = line.lstrip("\t") if tabs else line
                if cmp == delim or cmp.rstrip("\r") == delim:
                    found = True
                    break
                lines.append(cmp)
            del found  # bash runs an unterminated heredoc to the end of input (with a warning)
            t.body = "\n".join(lines) + ("\n" if lines else "")
        self.pending = []
        return i

    def _redir(self, op: str, fd: str | None, i: int, toks: list[Tok]) -> int:
        s, n = self.s, self.n
        tok = self._tok(Tok("r", op))
        tok.fd = fd
        while i < n and s[i] in " \t":
            i += 1
        if i >= n or s[i] in "\n;&|)" or (s[i] in "<>" and not s.startswith("(", i + 1)):
            self.problems.append(f"redirection {op} without target")
            toks.append(tok)
            return i
        holder: list[Tok] = []
        i = self._word(i, holder)
        tok.target = holder[0] if holder else None
        if op in ("<<", "<<-") and tok.target is not None:
            raw = tok.target.raw
            tok.quoted_delim = any(q in raw for q in "'\"\\")
            tok.raw = "".join(str(p[1]) for p in tok.target.parts if p[0] == "s") or raw
            tok.target = None
            self.pending.append(tok)
        toks.append(tok)
        return i

    # -- words

    def _word(self, i: int, toks: list[Tok]) -> int:
        s, n = self.s, self.n
        start = i
        parts: list[tuple] = []
        budget = self.budget
        while i < n:
            c = s[i]
            if c in " \t\r\n;&|()":
                break
            budget.left -= 1
            if budget.left < 0:
                raise _TooBig
            if c in "<>":
                if s.startswith("(", i + 1):
                    i = self._subst(i + 2, parts, "p", quoted=False, op=c)
                    continue
                break
            if c == "'":
                j = s.find("'", i + 1)
                if j < 0:
                    self.problems.append("unbalanced single quote")
                    parts.append(("s", s[i + 1:], True))
                    i = n
                else:
                    parts.append(("s", s[i + 1:j], True))
                    i = j + 1
            elif c == '"':
                i = self._dq(i + 1, parts)
            elif c == "\\":
                if i + 1 < n:
                    if s[i + 1] != "\n":
                        parts.append(("s", s[i + 1], True))
                    i += 2
                else:
                    i += 1
            elif c == "$":
                i = self._dollar(i, parts, False)
            elif c == "`":
                i = self._backtick(i, parts, False)
            elif c == "~" and i == start:
                m = re.compile(r"~[A-Za-z0-9_.+-]*").match(s, i)
                assert m is not None
                j = m.end()
                if j >= n or s[j] in "/ \t\r\n;&|()<>:":
                    parts.append(("t", m.group()[1:]))
                    i = j
                else:
                    parts.append(("s", m.group(), False))
                    i = j
            else:
                m = _PLAIN.match(s, i)
                if m is None:  # a lone special char
                    parts.append(("s", c, False))
                    i += 1
                    continue
                text = m.group()
                i = m.end()
                if i < n and s[i] == "~" and not parts and text.endswith("=") and _ASSIGN.fullmatch(text):
                    parts.append(("s", text, False))
                    m2 = re.compile(r"~[A-Za-z0-9_.+-]*").match(s, i)
                    assert m2 is not None
                    parts.append(("t", m2.group()[1:]))
                    i = m2.end()
                    continue
                parts.append(("s", text, False))
        raw = s[start:i]
        # `2>file`, `10<&0`: a number right before a redirection is its file descriptor
        if i < n and s[i] in "<>" and raw.isdigit() and not s.startswith("(", i + 1):
            for op in ("<<<", "<<-", "<<", *_OPS):
                if s.startswith(op, i):
                    break
            if op in _REDIR_OPS:
                return self._redir(op, raw, i + len(op), toks)
        if raw:
            toks.append(self._tok(Tok("w", parts=parts, raw=raw)))
        return i

    def _dq(self, i: int, parts: list[tuple]) -> int:
        s, n = self.s, self.n
        empty = True
        while i < n:
            c = s[i]
            if c == '"':
                if empty:
                    parts.append(("s", "", True))
                return i + 1
            empty = False
            if c == "\\":
                nxt = s[i + 1:i + 2]
                if nxt == "\n":
                    i += 2
                elif nxt in ('"', "\\", "$", "`"):
                    parts.append(("s", nxt, True))
                    i += 2
                else:
                    parts.append(("s", "\\", True))
                    i += 1
            elif c == "$":
                i = self._dollar(i, parts, True)
            elif c == "`":
                i = self._backtick(i, parts, True)
            else:
                m = _DQ_PLAIN.match(s, i)
                assert m is not None
                parts.append(("s", m.group(), True))
                i = m.end()
        self.problems.append("unbalanced double quote")
        return n

    def _ansi(self, i: int, parts: list[tuple]) -> int:
        s, n = self.s, self.n
        out: list[str] = []
        while i < n:
            c = s[i]
            if c == "'":
                parts.append(("s", "".join(out), True))
                return i + 1
            if c == "\\" and i + 1 < n:
                e = s[i + 1]
                i += 2
                if e in _ANSI:
                    out.append(_ANSI[e])
                elif e in "xuU":
                    width = {"x": 2, "u": 4, "U": 8}[e]
                    m = re.compile(f"[0-9A-Fa-f]{{1,{width}}}").match(s, i)
                    if m:
                        code = int(m.group(), 16)
                        if code <= 0x10FFFF:
                            out.append(chr(code))
                        i = m.end()
                    else:
                        out.append("\\" + e)
                elif e in "01234567":
                    m = re.compile(r"[0-7]{1,3}").match(s, i - 1)
                    assert m is not None
                    out.append(chr(int(m.group(), 8) & 0xFF))
                    i = m.end()
                elif e == "c" and i < n:
                    out.append(chr(ord(s[i]) & 0x1F))
                    i += 1
                else:
                    out.append("\\" + e)
                continue
            out.append(c)
            i += 1
        self.problems.append("unbalanced $' quote")
        parts.append(("s", "".join(out), True))
        return n

    def _dollar(self, i: int, parts: list[tuple], quoted: bool) -> int:
        s, n = self.s, self.n
        nxt = s[i + 1:i + 2]
        if nxt == "'" and not quoted:
            return self._ansi(i + 2, parts)
        if nxt == '"' and not quoted:
            return self._dq(i + 2, parts)
        if s.startswith("((", i + 1):
            j = _skip_parens(s, i + 1)
            parts.append(("a", s[i:j], quoted))
            return j
        if nxt == "(":
            return self._subst(i + 2, parts, "c", quoted)
        if nxt == "{":
            j = _skip_braces(s, i + 2)
            if j < 0:
                self.problems.append("unterminated ${")
                parts.append(("v", "", "?", s[i:], quoted, s[i:]))
                return n
            self._param(s[i + 2:j], parts, quoted, s[i:j + 1])
            return j + 1
        m = _NAME.match(s, i + 1)
        if m:
            parts.append(("v", m.group(), "", None, quoted, s[i:m.end()]))
            return m.end()
        if nxt and (nxt.isdigit() or nxt in "@*#?$!-"):
            parts.append(("v", nxt, "", None, quoted, s[i:i + 2]))
            return i + 2
        parts.append(("s", "$", quoted))
        return i + 1

    def _param(self, inner: str, parts: list[tuple], quoted: bool, raw: str) -> None:
        m = re.compile(r"(#|!)?([A-Za-z_][A-Za-z0-9_]*|[0-9]+|[@*#?$!-])").match(inner)
        if not m:
            parts.append(("v", "", "?", inner, quoted, raw))
            return
        prefix, name = m.group(1), m.group(2)
        rest = inner[m.end():]
        if prefix == "#" and not rest:
            parts.append(("v", name, "#len", None, quoted, raw))
            return
        if prefix:
            parts.append(("v", name, "?", rest, quoted, raw))
            return
        if not rest:
            parts.append(("v", name, "", None, quoted, raw))
            return
        for op in (":-", ":=", ":+", ":?", "-", "=", "+", "?", "^^", ",,", "^", ",", "##", "%%", "#", "%", "//", "/",
                   ":"):
            if rest.startswith(op):
                arg = rest[len(op):]
                if op in (":-", ":=", ":+", "-", "=", "+"):
                    sub = _Lexer(arg, self.depth, self.budget, self.problems)
                    holder: list[tuple] = []
                    j = 0
                    while j < len(arg):  # the word: quotes and expansions, blanks kept
                        c = arg[j]
                        if c in " \t\n;&|()<>":
                            holder.append(("s", c, quoted))
                            j += 1
                            continue
                        tmp: list[Tok] = []
                        j2 = sub._word(j, tmp)
                        if j2 == j:
                            holder.append(("s", c, quoted))
                            j += 1
                            continue
                        for t in tmp:
                            holder.extend(t.parts)
                        j = j2
                    parts.append(("v", name, op, holder, quoted, raw))
                else:
                    parts.append(("v", name, op, arg, quoted, raw))
                return
        parts.append(("v", name, "?", rest, quoted, raw))

    def _subst(self, i: int, parts: list[tuple], kind: str, quoted: bool, op: str = "") -> int:
        s = self.s
        if self.depth + 1 > MAX_DEPTH:
            j = _skip_parens(s, i - 1)
            self.problems.append(f"nesting deeper than {MAX_DEPTH} levels")
            parts.append((kind, None, s[i:j - 1], quoted, op))
            return j
        sub = _Lexer(s, self.depth + 1, self.budget, self.problems)
        toks, j = sub.lex(i, closing=True)
        parts.append((kind, toks, s[i:j - 1], quoted, op))
        return j

    def _backtick(self, i: int, parts: list[tuple], quoted: bool) -> int:
        s, n = self.s, self.n
        j = i + 1
        out: list[str] = []
        while j < n:
            c = s[j]
            if c == "\\" and j + 1 < n:
                out.append(s[j + 1] if s[j + 1] in "`\\$" else s[j:j + 2])
                j += 2
                continue
            if c == "`":
                break
            out.append(c)
            j += 1
        else:
            self.problems.append("unbalanced backtick")
        text = "".join(out)
        if self.depth + 1 > MAX_DEPTH:
            self.problems.append(f"nesting deeper than {MAX_DEPTH} levels")
            parts.append(("c", None, text, quoted, ""))
        else:
            sub = _Lexer(text, self.depth + 1, self.budget, self.problems)
            toks, _ = sub.lex(0)
            parts.append(("c", toks, text, quoted, ""))
        return min(j + 1, n)


def _match_close(s: str, i: int, opener: str, closer: str, depth: int) -> int:
    """Index of the `closer` that brings `depth` to 0, scanning from i (quote-aware, iterative), or -1."""
    n = len(s)
    while i < n:
        c = s[i]
        if c == "\\":
            i += 2
            continue
        if c == "'":
            j = s.find("'", i + 1)
            i = n if j < 0 else j + 1
            continue
        if c == opener:
            depth += 1
        elif c == closer:
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def _skip_parens(s: str, i: int) -> int:
    """Index after the `)` matching the `(` at i."""
    j = _match_close(s, i, "(", ")", 0)
    return len(s) if j < 0 else j + 1


def _skip_braces(s: str, i: int) -> int:
    """Index of the `}` closing a `${` whose body starts at i, or -1."""
    return _match_close(s, i, "{", "}", 1)


# ------------------------------------------------------------------------------------------------ output

class Arg:
    """One argument after expansion: `text`; `unresolved` when part of it could not be known."""

    __slots__ = ("glob", "quoted", "subs", "text", "unresolved")

    def __init__(self, text: str, unresolved: bool = False, quoted: bool = False, glob: bool = False,
                 subs: list[Command] | None = None) -> None:
        self.text, self.unresolved, self.quoted, self.glob = text, unresolved, quoted, glob
        self.subs: list[Command] = subs if subs is not None else []

    def __repr__(self) -> str:
        return f"Arg({self.text!r}{', ?' if self.unresolved else ''})"


class Redirect:
    __slots__ = ("body", "fd", "op", "target")

    def __init__(self, op: str, fd: str | None, target: Arg | None, body: str | None = None) -> None:
        self.op, self.fd, self.target, self.body = op, fd, target, body

    @property
    def writes(self) -> bool:
        return self.op in (">", ">>", ">|", "&>", "&>>", "<>") or (self.op == ">&" and self.target is not None
                                                                    and not self.target.text.isdigit()
                                                                    and self.target.text != "-")

    @property
    def reads(self) -> bool:
        return self.op in ("<", "<>")

    def __str__(self) -> str:
        if self.body is not None:
            return f"{self.op} <{len(self.body)} chars>"
        return f"{self.fd or ''}{self.op}{self.target.text if self.target else ''}"


class Command:
    """One simple command as the shell would run it."""

    __slots__ = ("actions", "args", "cwd", "depth", "env", "exec_sink", "raw", "redirects", "stdin",
                 "stdin_text", "unknown_program", "upstream", "via")

    def __init__(self, args: list[Arg], cwd: str | None, via: tuple[str, ...], depth: int) -> None:
        self.args = args
        self.cwd = cwd
        self.via = via
        self.depth = depth
        self.redirects: list[Redirect] = []
        self.env: dict[str, str | None] = {}
        self.stdin: str | None = None  # None (terminal/unknown), pipe, heredoc, herestring, file
        self.stdin_text: str | None = None
        self.upstream: list[Command] = []
        self.exec_sink = False  # its output is executed as code (piped or substituted into a shell)
        self.unknown_program = False
        self.actions: list[tuple[str, str | None]] = []  # interpreter code: (rmtree|read|write|exec-download, path)
        self.raw = ""

    @property
    def argv(self) -> list[str]:
        return [a.text for a in self.args]

    @property
    def program(self) -> str:
        if not self.args:
            return ""
        return posixpath.basename(self.args[0].text)

    def resolve(self, path: str) -> str | None:
        """Absolute normalised path, or None when the working directory is unknown."""
        return resolve(path, self.cwd)

    def __repr__(self) -> str:
        return f"Command({self.argv!r}, cwd={self.cwd!r}, via={self.via!r})"


def resolve(path: str, cwd: str | None) -> str | None:
    if not path:
        return None
    if not path.startswith("/"):
        if cwd is None:
            return None
        path = cwd + "/" + path
    out = posixpath.normpath(path)
    return "/" + out.lstrip("/") if out.startswith("//") else out


class Parse:
    __slots__ = ("commands", "forkbombs", "problems", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.commands: list[Command] = []
        self.problems: list[str] = []
        self.forkbombs: list[str] = []


class _State:
    __slots__ = ("cwd", "funcs", "vars")

    def __init__(self, cwd: str | None, vars: dict[str, str | None], funcs: dict[str, int]) -> None:
        self.cwd, self.vars, self.funcs = cwd, vars, funcs

    def copy(self) -> _State:
        return _State(self.cwd, dict(self.vars), self.funcs)


# ------------------------------------------------------------------------------------------------ parser

def _opt_value(args: list[Arg], i: int, with_value: frozenset[str], long_with_value: frozenset[str] = frozenset(),
               ) -> int:
    """Skip options starting at i; returns the index of the first operand (after `--` when present)."""
    n = len(args)
    while i < n:
        a = args[i].text
        if a == "--":
            return i + 1
        if not a.startswith("-") or a == "-":
            return i
        if a.startswith("--"):
            if "=" not in a and a in long_with_value:
                i += 2
                continue
            i += 1
            continue
        # bundled short flags: the first one taking a value eats the rest (or the next word)
        for k, ch in enumerate(a[1:], 1):
            if ch in with_value:
                if k == len(a) - 1:
                    i += 1
                break
        i += 1
    return i


_SUDO_V = frozenset("ugCDhpRrtTU")
_ENV_V = frozenset("uCS")
_TIMEOUT_V = frozenset("sk")
_XARGS_V = frozenset("ILnPsdEa")
_SSH_V = frozenset("bcDEeFIiJLlmOopQRSWw")
_DOCKER_EXEC_V = frozenset("euw")
_DOCKER_EXEC_LONG = frozenset({"--env", "--user", "--workdir", "--env-file", "--detach-keys"})
_DOCKER_RUN_V = frozenset("eupvwlhcm")
_DOCKER_RUN_LONG = frozenset({"--env", "--user", "--publish", "--volume", "--workdir", "--label", "--hostname",
                              "--name", "--network", "--entrypoint", "--env-file", "--mount", "--memory", "--cpus",
                              "--platform", "--add-host", "--device", "--cap-add", "--cap-drop", "--restart",
                              "--log-driver", "--pull", "--runtime", "--security-opt", "--tmpfs", "--ulimit",
                              "--gpus", "--ipc", "--pid", "--shm-size", "--stop-signal"})
_KUBECTL_V = frozenset("cn")


class _Parser:
    def __init__(self, result: Parse, budget: _Budget) -> None:
        self.r = result
        self.budget = budget

    # -- entry points

    def run_text(self, text: str, st: _State, via: tuple[str, ...], depth: int) -> list[Command]:
        """Lex and parse `text` (a script fed to a shell); returns the commands emitted."""
        if depth > MAX_DEPTH:
            self.r.problems.append(f"nesting deeper than {MAX_DEPTH} levels: {text[:80]}")
            return []
        lexer = _Lexer(text, depth, self.budget, self.r.problems)
        toks, _ = lexer.lex(0)
        return self.run_toks(toks, st, via, depth)

    def run_toks(self, toks: list[Tok], st: _State, via: tuple[str, ...], depth: int) -> list[Command]:
        start = len(self.r.commands)
        i = self.seq(toks, 0, st, via, depth, (), ())
        while i < len(toks):  # stray closers: skip and go on
            self.r.problems.append(f"unexpected {toks[i].v or toks[i].raw!r}")
            i = self.seq(toks, i + 1, st, via, depth, (), ())
        return self.r.commands[start:]

    # -- grammar

    def seq(self, toks: list[Tok], i: int, st: _State, via: tuple[str, ...], depth: int,
            stop_ops: tuple[str, ...], stop_kw: tuple[str, ...]) -> int:
        n = len(toks)
        while i < n:
            t = toks[i]
            if t.kind == "op":
                if t.v in stop_ops:
                    return i
                if t.v in (";", "\n", "&", "&&", "||"):
                    i += 1
                    continue
                if t.v in (")", ";;", ";&", ";;&", "|", "|&"):
                    return i
            elif t.kind == "w" and stop_kw and t.literal() in stop_kw:
                return i
            i = self.pipeline(toks, i, st, via, depth, stop_ops, stop_kw)
        return i

    def pipeline(self, toks: list[Tok], i: int, st: _State, via: tuple[str, ...], depth: int,
                 stop_ops: tuple[str, ...], stop_kw: tuple[str, ...]) -> int:
        elements: list[tuple[list[Command], list[Command]]] = []
        n = len(toks)
        while True:
            start = len(self.r.commands)
            i, primaries = self.element(toks, i, st, via, depth, stop_ops, stop_kw)
            elements.append((primaries, self.r.commands[start:]))
            if i < n and toks[i].kind == "op" and toks[i].v in ("|", "|&"):
                i += 1
                while i < n and toks[i].kind == "op" and toks[i].v == "\n":
                    i += 1
                continue
            break
        if len(elements) > 1:
            upstream: list[Command] = []
            for k, (primaries, emitted) in enumerate(elements):
                if k:
                    for cmd in primaries:
                        cmd.upstream = list(upstream)
                        if cmd.stdin is None:
                            cmd.stdin = "pipe"
                            prev = elements[k - 1][0]
                            cmd.stdin_text = _output_text(prev[-1]) if prev else None
                        self.feed(cmd, st, depth)
                upstream.extend(emitted)
        else:
            for cmd in elements[0][0]:
                if cmd.stdin is not None:
                    self.feed(cmd, st, depth)
        return i

    def element(self, toks: list[Tok], i: int, st: _State, via: tuple[str, ...], depth: int,
                stop_ops: tuple[str, ...], stop_kw: tuple[str, ...]) -> tuple[int, list[Command]]:
        n = len(toks)
        # reserved words at command position
        while i < n and toks[i].kind == "w":
            kw = toks[i].literal()
            if kw in stop_kw:
                return i, []
            if kw in _KW_SKIP:
                i += 1
                continue
            if kw in _KW_END:
                return self._skip_redirs(toks, i + 1), []
            if kw in ("for", "select"):
                return self._for(toks, i + 1, st), []
            if kw == "case":
                return self._case(toks, i + 1, st, via, depth), []
            if kw == "function" and i + 1 < n and toks[i + 1].kind == "w":
                name = toks[i + 1].raw
                j = i + 2
                if j + 1 < n and toks[j].kind == "op" and toks[j].v == "(" and toks[j + 1].v == ")":
                    j += 2
                return self._function(name, toks, j, st, via, depth), []
            break
        if i >= n:
            return i, []
        t = toks[i]
        if t.kind == "op":
            if t.v == "(":
                sub = st.copy()
                start = len(self.r.commands)
                j = self.seq(toks, i + 1, sub, via, depth, (")",), ())
                if j < n and toks[j].v == ")":
                    j += 1
                else:
                    self.r.problems.append("unbalanced (")
                emitted = self.r.commands[start:]
                return self._skip_redirs(toks, j), [c for c in emitted if c.via == via]
            return i, []
        words: list[Tok] = []
        redirs: list[Tok] = []
        while i < n:
            t = toks[i]
            if t.kind == "w":
                words.append(t)
            elif t.kind == "r":
                redirs.append(t)
            else:
                if (t.v == "(" and len(words) == 1 and not redirs and i + 1 < n and toks[i + 1].kind == "op"
                        and toks[i + 1].v == ")"):
                    return self._function(words[0].raw, toks, i + 2, st, via, depth), []
                break
            i += 1
        if not words and not redirs:
            return i, []
        return i, self.emit(words, redirs, st, via, depth)

    def _skip_redirs(self, toks: list[Tok], i: int) -> int:
        while i < len(toks) and toks[i].kind == "r":
            i += 1
        return i

    def _for(self, toks: list[Tok], i: int, st: _State) -> int:
        n = len(toks)
        if i < n and toks[i].kind == "op" and toks[i].v == "(":  # for (( … ))
            while i < n and not (toks[i].kind == "op" and toks[i].v in (";", "\n")):
                i += 1
            return i
        if i < n and toks[i].kind == "w":
            st.vars[toks[i].raw] = None
            i += 1
        while i < n and toks[i].kind == "w":
            i += 1
        return i

    def _case(self, toks: list[Tok], i: int, st: _State, via: tuple[str, ...], depth: int) -> int:
        n = len(toks)
        i += 1  # the word
        if i < n and toks[i].literal() == "in":
            i += 1
        while i < n:
            t = toks[i]
            if t.kind == "op" and t.v in ("\n", ";"):
                i += 1
                continue
            if t.literal() == "esac":
                return i + 1
            if t.kind == "op" and t.v == "(":
                i += 1
            while i < n and not (toks[i].kind == "op" and toks[i].v == ")"):
                i += 1
            i += 1
            i = self.seq(toks, i, st, via, depth, (";;", ";&", ";;&"), ("esac",))
            if i < n and toks[i].kind == "op" and toks[i].v in (";;", ";&", ";;&"):
                i += 1
        return i

    def _function(self, name: str, toks: list[Tok], i: int, st: _State, via: tuple[str, ...], depth: int) -> int:
        n = len(toks)
        while i < n and toks[i].kind == "op" and toks[i].v == "\n":
            i += 1
        start = len(self.r.commands)
        fvia = (*via, f"function {name}")
        if i < n and toks[i].kind == "w" and toks[i].literal() == "{":
            j = self.seq(toks, i + 1, st.copy(), fvia, depth, (), ("}",))
            if j < n and toks[j].literal() == "}":
                j += 1
            else:
                self.r.problems.append(f"function {name}: missing }}")
        elif i < n and toks[i].kind == "op" and toks[i].v == "(":
            j = self.seq(toks, i + 1, st.copy(), fvia, depth, (")",), ())
            j += 1
        else:
            j, _ = self.element(toks, i, st.copy(), fvia, depth, (), ())
        body = self.r.commands[start:]
        st.funcs[name] = 1
        # a function that calls itself in a pipeline or in the background: a fork bomb
        calls = [c for c in body if c.args and c.args[0].text == name]
        if calls and (len(calls) >= 2 or any(c.stdin == "pipe" or c.upstream for c in calls)
                      or _backgrounded(toks, i, j, name)):
            self.r.forkbombs.append(name)
        return self._skip_redirs(toks, j)

    # -- expansion

    def expand(self, tok: Tok, st: _State, via: tuple[str, ...], depth: int, split: bool = True) -> list[Arg]:
        """Fields of one word: quote removal, known variables, command substitution parsed (its commands emitted)."""
        fields: list[Arg] = []
        cur: list[str] = []
        state = {"unres": False, "quoted": False, "glob": False, "open": False}
        subs: list[Command] = []

        def close() -> None:
            if state["open"]:
                fields.append(Arg("".join(cur), bool(state["unres"]), bool(state["quoted"]), bool(state["glob"]),
                                  list(subs)))
            cur.clear()
            subs.clear()
            state.update(unres=False, quoted=False, glob=False, open=False)

        def add(text: str, quoted: bool, unres: bool = False) -> None:
            cur.append(text)
            state["open"] = True
            if unres:
                state["unres"] = True
            if quoted:
                state["quoted"] = True

        def add_split(value: str, quoted: bool, unres: bool) -> None:
            if quoted or not split:
                add(value, quoted, unres)
                if not value and quoted:
                    state["open"] = True
                return
            pieces = value.split()
            if not pieces:
                if unres:
                    add(value, False, True)
                return
            if value[:1].isspace():
                close()
            for k, p in enumerate(pieces):
                if k:
                    close()
                add(p, False, unres)
            if value[-1:].isspace():
                close()

        for part in tok.parts:
            kind = part[0]
            if kind == "s":
                add(part[1], part[2])
                if not part[2] and any(ch in part[1] for ch in "*?["):
                    state["glob"] = True
            elif kind == "t":
                user = part[1]
                home = st.vars.get("HOME") if not user else None
                if user == "" and home:
                    add(home, False)
                elif user == "":
                    add("~", False, True)
                else:
                    add("~" + user, False, True)
            elif kind == "v":
                value, known = self._var(part, st, via, depth)
                add_split(value, part[4], not known)
            elif kind == "c":
                value, known, inner = self._cmdsubst(part, st, via, depth)
                subs.extend(inner)
                add_split(value, part[3], not known)
            elif kind == "p":
                toks = part[1]
                inner = []
                if toks is not None:
                    inner = self.run_toks(toks, st.copy(), (*via, f"{part[4]}()"), depth + 1)
                subs.extend(c for c in inner if c.via == (*via, f"{part[4]}()"))
                add("/dev/fd/63", False, True)
            elif kind == "a":
                add(part[1], part[2], True)
        close()
        return fields

    def _var(self, part: tuple, st: _State, via: tuple[str, ...], depth: int) -> tuple[str, bool]:
        _, name, op, arg, _quoted, raw = part
        if name in ("@", "*"):
            pos = []
            k = 1
            while str(k) in st.vars:
                v = st.vars[str(k)]
                if v is None:
                    return raw, False
                pos.append(v)
                k += 1
            if "0" in st.vars:  # inside `sh -c`: positional parameters are known
                return " ".join(pos), True
            return raw, False
        known = name in st.vars and st.vars[name] is not None
        value = st.vars.get(name) if known else None
        if op == "":
            return (value, True) if value is not None else (raw, False)
        if op in (":-", "-", ":=", "="):
            if value is not None and (value or op in ("-", "=")):
                return value, True
            text, ok = self._join_parts(arg, st, via, depth)
            if op in (":=", "=") and ok:
                st.vars[name] = text
            # unknown variable: assume unset, use the default, but mark unresolved
            return text, ok and known
        if op in (":+", "+"):
            if value is not None:
                if value or op == "+":
                    return self._join_parts(arg, st, via, depth)
                return "", True
            return raw, False
        if value is None:
            return raw, False
        if op == "#len":
            return str(len(value)), True
        if op == "^^":
            return value.upper(), True
        if op == ",,":
            return value.lower(), True
        if op == "^":
            return value[:1].upper() + value[1:], True
        if op == ",":
            return value[:1].lower() + value[1:], True
        if op in ("#", "##", "%", "%%") and not any(ch in arg for ch in "*?["):
            if op.startswith("#"):
                return (value[len(arg):] if value.startswith(arg) else value), True
            return (value[: len(value) - len(arg)] if arg and value.endswith(arg) else value), True
        if op in ("/", "//"):
            pat, _, rep = arg.partition("/")
            if pat and not any(ch in pat for ch in "*?[#%"):
                return (value.replace(pat, rep) if op == "//" else value.replace(pat, rep, 1)), True
            return raw, False
        if op == ":":
            m = re.compile(r"\s*(-?\d+)\s*(?::\s*(-?\d+)\s*)?$").match(arg)
            if m:
                off = int(m.group(1))
                length = m.group(2)
                sl = value[off:] if off >= 0 else value[len(value) + off:]
                if length is not None:
                    ln = int(length)
                    sl = sl[:ln]
                return sl, True
        return raw, False

    def _join_parts(self, parts: list[tuple] | None, st: _State, via: tuple[str, ...], depth: int
                    ) -> tuple[str, bool]:
        if not parts:
            return "", True
        tok = Tok("w", parts=parts)
        fields = self.expand(tok, st, via, depth, split=False)
        return " ".join(f.text for f in fields), not any(f.unresolved for f in fields)

    def _cmdsubst(self, part: tuple, st: _State, via: tuple[str, ...], depth: int
                  ) -> tuple[str, bool, list[Command]]:
        toks = part[1]
        raw = "$(" + part[2] + ")"
        if toks is None:
            return raw, False, []
        sv = (*via, "$()")
        inner = self.run_toks(toks, st.copy(), sv, depth + 1)
        top = [c for c in inner if c.via == sv]
        # constant folding: $(echo rm), $(printf %s rm)
        if len(top) == 1 and not top[0].upstream:
            out = _output_text(top[0])
            if out is not None:
                return out.rstrip("\n"), True, inner
        if top and top[-1].upstream:
            last = top[-1]
            text = _output_text(last)
            if text is not None:
                return text.rstrip("\n"), True, inner
        return raw, False, inner

    # -- simple commands

    def emit(self, words: list[Tok], redirs: list[Tok], st: _State, via: tuple[str, ...], depth: int
             ) -> list[Command]:
        k = 0
        assigns: list[tuple[str, str | None]] = []
        while k < len(words):
            w = words[k]
            if not w.parts or w.parts[0][0] != "s" or w.parts[0][2]:
                break
            m = _ASSIGN.match(w.parts[0][1])
            if not m:
                break
            rest = Tok("w", parts=[("s", w.parts[0][1][m.end():], False), *w.parts[1:]])
            fields = self.expand(rest, st, via, depth, split=False)
            value: str | None = "".join(f.text for f in fields)
            if any(f.unresolved for f in fields):
                value = None
            if m.group(2) == "+" and value is not None:
                old = st.vars.get(m.group(1))
                value = None if old is None and m.group(1) in st.vars else (old or "") + value
            assigns.append((m.group(1), value))
            k += 1
        args: list[Arg] = []
        for w in words[k:]:
            args.extend(self.expand(w, st, via, depth))
        cmd = Command(args, st.cwd, via, depth)
        cmd.raw = " ".join(w.raw for w in words)
        for name, value in assigns:
            cmd.env[name] = value
        for r in redirs:
            target = None
            body = None
            if r.v in ("<<", "<<-"):
                body = r.body or ""
            elif r.target is not None:
                fields = self.expand(r.target, st, via, depth, split=False)
                target = fields[0] if fields else Arg("", True)
                for f in fields[1:]:
                    target.subs.extend(f.subs)
                if r.v == "<<<":
                    body = target.text + "\n"
            red = Redirect(r.v, r.fd, target, body)
            cmd.redirects.append(red)
            if r.fd in (None, "0") and r.v in ("<<", "<<-", "<<<"):
                cmd.stdin, cmd.stdin_text = ("herestring" if r.v == "<<<" else "heredoc"), body
            elif r.fd in (None, "0") and r.v == "<":
                cmd.stdin, cmd.stdin_text = "file", None
                if target is not None and target.subs:  # `sh < <(curl …)`
                    cmd.stdin = "pipe"
                    cmd.upstream = list(target.subs)
        if not args:
            for name, value in assigns:
                st.vars[name] = value
            if redirs:
                self.r.commands.append(cmd)
                return [cmd]
            return []
        return self.unwrap(cmd, st, depth)

    def unwrap(self, cmd: Command, st: _State, depth: int) -> list[Command]:
        """Record `cmd`, then follow wrappers to the command they run; returns the primary command(s)."""
        self.r.commands.append(cmd)
        args = cmd.args
        a0 = args[0]
        if a0.unresolved:
            cmd.unknown_program = True
        if a0.subs:
            _mark_sink(a0.subs)
        prog = cmd.program
        # builtins that change the parser's state
        if prog in ("cd", "pushd") and cmd.via[-1:] != ("xargs",):
            target = next((a for a in args[1:] if not a.text.startswith("-") or a.text == "-"), None)
            if target is None:
                st.cwd = st.vars.get("HOME")
            elif target.unresolved or target.text == "-":
                st.cwd = None
            else:
                st.cwd = resolve(target.text, st.cwd)
            return [cmd]
        if prog in ("export", "declare", "typeset", "local", "readonly"):
            for a in args[1:]:
                m = _ASSIGN.match(a.text)
                if m:
                    st.vars[m.group(1)] = None if a.unresolved else a.text[m.end():]
            return [cmd]
        if prog == "unset":
            for a in args[1:]:
                st.vars.pop(a.text, None)
            return [cmd]
        if prog == "read":
            for a in args[1:]:
                if not a.text.startswith("-"):
                    st.vars[a.text] = None
            return [cmd]
        inner = self._wrapped(cmd, st, depth)
        if inner is None:
            return [cmd]
        return inner

    def _sub(self, cmd: Command, args: list[Arg], st: _State, depth: int, label: str,
             cwd: str | bool | None = False, env: dict[str, str | None] | None = None) -> list[Command]:
        if not args:
            return [cmd]
        if depth + 1 > MAX_DEPTH:
            self.r.problems.append(f"nesting deeper than {MAX_DEPTH} levels: {cmd.raw[:80]}")
            return [cmd]
        new = Command(args, st.cwd if cwd is False else (cwd if isinstance(cwd, str) else None),
                      (*cmd.via, label), depth + 1)
        new.raw = cmd.raw
        new.redirects = cmd.redirects
        new.env = dict(cmd.env)
        if env:
            new.env.update(env)
        new.stdin, new.stdin_text, new.upstream = cmd.stdin, cmd.stdin_text, cmd.upstream
        return self.unwrap(new, st, depth + 1)

    def _script(self, cmd: Command, text: Arg, st: _State, depth: int, label: str,
                positional: list[Arg] | None = None, cwd: str | bool | None = False) -> list[Command]:
        """A string run as shell code (`bash -c`, `eval`, `ssh host …`, `su -c`)."""
        if text.subs:
            _mark_sink(text.subs)
        if text.unresolved and not text.subs:
            self.r.problems.append(f"{label}: script built from unknown values: {text.text[:80]}")
        sub = st.copy()
        if cwd is not False:
            sub.cwd = cwd if isinstance(cwd, str) else None
        if positional is not None:
            for k, a in enumerate(positional[:10]):
                sub.vars[str(k)] = None if a.unresolved else a.text
        self.run_text(text.text, sub, (*cmd.via, label), depth + 1)
        return [cmd]

    def _wrapped(self, cmd: Command, st: _State, depth: int) -> list[Command] | None:
        args = cmd.args
        prog = cmd.program
        n = len(args)
        if prog in ("sudo", "doas"):
            i = _opt_value(args, 1, _SUDO_V if prog == "sudo" else frozenset("uC"),
                           frozenset({"--user", "--group", "--chdir", "--prompt", "--role", "--type", "--host"}))
            env: dict[str, str | None] = {}
            while i < n and _ASSIGN.match(args[i].text):
                m = _ASSIGN.match(args[i].text)
                assert m is not None
                env[m.group(1)] = None if args[i].unresolved else args[i].text[m.end():]
                i += 1
            return self._sub(cmd, args[i:], st, depth, prog, env=env)
        if prog == "env":
            i = 1
            env = {}
            cwd: str | bool | None = False
            while i < n:
                a = args[i].text
                if a == "--":
                    i += 1
                    break
                if a in ("-S", "--split-string") and i + 1 < n:
                    split = self._words_of(args[i + 1], st, depth)
                    return self._sub(cmd, split + args[i + 2:], st, depth, "env", env=env)
                if a.startswith("-S") and len(a) > 2:
                    split = self._words_of(Arg(a[2:], args[i].unresolved), st, depth)
                    return self._sub(cmd, split + args[i + 1:], st, depth, "env", env=env)
                if a.startswith("--split-string="):
                    split = self._words_of(Arg(a.split("=", 1)[1], args[i].unresolved), st, depth)
                    return self._sub(cmd, split + args[i + 1:], st, depth, "env", env=env)
                if a in ("-C", "--chdir") and i + 1 < n:
                    cwd = None if args[i + 1].unresolved else resolve(args[i + 1].text, st.cwd)
                    i += 2
                    continue
                if a in ("-u", "--unset") and i + 1 < n:
                    i += 2
                    continue
                if a.startswith("-") and a != "-":
                    i += 1
                    continue
                m = _ASSIGN.match(a)
                if m:
                    env[m.group(1)] = None if args[i].unresolved else a[m.end():]
                    i += 1
                    continue
                break
            return self._sub(cmd, args[i:], st, depth, "env", cwd=cwd, env=env)
        if prog in ("nice", "ionice", "nohup", "stdbuf", "time", "builtin", "exec", "setsid", "unbuffer",
                    "caffeinate", "chronic", "torsocks", "proxychains", "proxychains4", "catchsegv"):
            vals = {"nice": frozenset("n"), "ionice": frozenset("cnpt"), "stdbuf": frozenset("ioe"),
                    "time": frozenset("fo"), "exec": frozenset("a")}.get(prog, frozenset())
            i = 1
            if prog == "nice" and i < n and re.compile(r"-\d+$").match(args[i].text):
                i += 1
            i = _opt_value(args, i, vals, frozenset({"--adjustment", "--class", "--classdata", "--format",
                                                     "--output"}))
            return self._sub(cmd, args[i:], st, depth, prog)
        if prog == "command":
            i = 1
            while i < n and args[i].text.startswith("-"):
                if args[i].text in ("-v", "-V"):
                    return None
                i += 1
            return self._sub(cmd, args[i:], st, depth, prog)
        if prog == "timeout":
            i = _opt_value(args, 1, _TIMEOUT_V, frozenset({"--signal", "--kill-after"}))
            return self._sub(cmd, args[i + 1:], st, depth, prog)
        if prog == "watch":
            i = _opt_value(args, 1, frozenset("nq"), frozenset({"--interval", "--differences"}))
            rest = args[i:]
            if not rest:
                return None
            if any(a.text in ("-x", "--exec") for a in args[1:i]):
                return self._sub(cmd, rest, st, depth, prog)
            return self._script(cmd, _joined(rest), st, depth, "watch")
        if prog == "flock":
            i = 1
            while i < n and args[i].text.startswith("-"):
                if args[i].text in ("-c", "--command") and i + 1 < n:
                    return self._script(cmd, args[i + 1], st, depth, "flock -c")
                if args[i].text in ("-w", "--timeout", "-E", "--conflict-exit-code"):
                    i += 1
                i += 1
            i += 1  # the lock file
            if i < n and args[i].text in ("-c", "--command") and i + 1 < n:
                return self._script(cmd, args[i + 1], st, depth, "flock -c")
            return self._sub(cmd, args[i:], st, depth, prog)
        if prog == "chroot":
            i = _opt_value(args, 1, frozenset(), frozenset({"--userspec", "--groups"}))
            return self._sub(cmd, args[i + 1:], st, depth, prog, cwd=None)
        if prog in ("su", "runuser"):
            i = 1
            while i < n:
                a = args[i].text
                if a in ("-c", "--command") and i + 1 < n:
                    return self._script(cmd, args[i + 1], st, depth, f"{prog} -c")
                if a.startswith("--command="):
                    return self._script(cmd, Arg(a.split("=", 1)[1], args[i].unresolved), st, depth, f"{prog} -c")
                i += 1
            return None
        if prog == "xargs":
            i = _opt_value(args, 1, _XARGS_V, frozenset({"--max-args", "--max-procs", "--delimiter", "--arg-file",
                                                         "--max-lines", "--replace", "--eof", "--max-chars"}))
            rest = args[i:] or [Arg("echo")]
            new = self._sub(cmd, [*rest, Arg("{stdin}", True)], st, depth, "xargs")
            return new
        if prog == "find":
            return self._find(cmd, st, depth)
        if prog in SHELLS:
            return self._shell(cmd, st, depth)
        if prog in ("eval",):
            if n > 1:
                return self._script(cmd, _joined(args[1:]), st, depth, "eval")
            return None
        if prog in ("source", "."):
            if n > 1 and args[1].subs:
                _mark_sink(args[1].subs)
            return None
        if prog == "ssh":
            i = _opt_value(args, 1, _SSH_V)
            if i + 1 < n:
                return self._script(cmd, _joined(args[i + 1:]), st, depth, f"ssh {args[i].text}", cwd=None)
            return None
        if prog in ("docker", "podman", "nerdctl"):
            k = 1
            if k < n and args[k].text == "container":
                k += 1
            if k < n and args[k].text == "exec":
                i = _opt_value(args, k + 1, _DOCKER_EXEC_V, _DOCKER_EXEC_LONG)
                return self._sub(cmd, args[i + 1:], st, depth, f"{prog} exec", cwd=None)
            if k < n and args[k].text == "run":
                i = _opt_value(args, k + 1, _DOCKER_RUN_V, _DOCKER_RUN_LONG)
                return self._sub(cmd, args[i + 1:], st, depth, f"{prog} run", cwd=None)
            return None
        if prog in ("kubectl", "oc"):
            if n > 1 and args[1].text == "exec":
                for j in range(2, n):
                    if args[j].text == "--":
                        return self._sub(cmd, args[j + 1:], st, depth, "kubectl exec", cwd=None)
                i = _opt_value(args, 2, _KUBECTL_V, frozenset({"--container", "--namespace"}))
                return self._sub(cmd, args[i + 1:], st, depth, "kubectl exec", cwd=None)
            return None
        if prog in INTERPRETERS or prog.startswith(("python3.", "python2.")):
            return self._interpreter(cmd, st, depth)
        return None

    def _words_of(self, arg: Arg, st: _State, depth: int) -> list[Arg]:
        lexer = _Lexer(arg.text, depth, self.budget, self.r.problems)
        toks, _ = lexer.lex(0)
        out: list[Arg] = []
        for t in toks:
            if t.kind == "w":
                out.extend(self.expand(t, st, (), depth))
        return out

    def _find(self, cmd: Command, st: _State, depth: int) -> list[Command] | None:
        args = cmd.args
        n = len(args)
        i = 1
        while (i < n and args[i].text in ("-H", "-L", "-P")) or (i < n and args[i].text.startswith("-O")):
            i += 1
        roots: list[Arg] = []
        while i < n and not args[i].text.startswith("-") and args[i].text not in ("(", "!", ")"):
            roots.append(args[i])
            i += 1
        out: list[Command] = [cmd]
        while i < n:
            a = args[i].text
            if a in ("-exec", "-execdir", "-ok", "-okdir"):
                j = i + 1
                while j < n and args[j].text not in (";", "+"):
                    j += 1
                root = roots[0] if roots else Arg(".")
                inner: list[Arg] = []
                for x in args[i + 1:j]:
                    if "{}" in x.text:
                        inner.append(Arg(x.text.replace("{}", root.text.rstrip("/") + "/{}"), x.unresolved or
                                         root.unresolved, x.quoted))
                    else:
                        inner.append(x)
                if inner:
                    out.extend(self._sub(cmd, inner, st, depth, f"find {a}"))
                i = j + 1
                continue
            i += 1
        return out

    def _shell(self, cmd: Command, st: _State, depth: int) -> list[Command] | None:
        args = cmd.args
        n = len(args)
        i = 1
        if cmd.program == "busybox":
            if n > 1 and args[1].text in SHELLS:
                i = 2
            elif n > 1:
                return self._sub(cmd, args[1:], st, depth, "busybox")
            else:
                return None
        has_c = False
        reads_stdin = False
        while i < n:
            a = args[i].text
            if a == "--" or a == "-":
                i += 1
                reads_stdin = reads_stdin or a == "-"
                break
            if a.startswith("--"):
                i += 1
                continue
            if a.startswith(("-", "+")) and len(a) > 1:
                if "c" in a[1:] and a[0] == "-":
                    has_c = True
                if "s" in a[1:] and a[0] == "-":
                    reads_stdin = True
                if a in ("-o", "+o", "-O", "+O") and i + 1 < n:
                    i += 1
                i += 1
                continue
            break
        if has_c:
            if i >= n:
                self.r.problems.append("shell -c without a script")
                return None
            return self._script(cmd, args[i], st, depth, f"{cmd.program} -c", positional=args[i + 1:])
        if i < n and not reads_stdin:
            script = args[i]
            if script.subs:  # bash <(curl …)
                _mark_sink(script.subs)
            elif script.text in ("/dev/stdin", "/proc/self/fd/0", "/dev/fd/0"):
                cmd.actions.append(("stdin-code", None))
            return None
        cmd.actions.append(("stdin-code", None))
        return None

    def _interpreter(self, cmd: Command, st: _State, depth: int) -> list[Command] | None:
        args = cmd.args
        n = len(args)
        prog = cmd.program
        lang = "python" if (prog in PYTHONS or prog.startswith(("python3.", "python2."))) else prog
        if lang == "nodejs" or lang in ("deno", "bun"):
            lang = "node"
        code_flags = {"python": ("-c",), "node": ("-e", "--eval", "-p", "--print"), "perl": ("-e", "-E"),
                      "ruby": ("-e",), "php": ("-r",), "lua": ("-e",)}.get(lang, ())
        i = 1
        code: Arg | None = None
        while i < n:
            a = args[i].text
            if a in code_flags and i + 1 < n:
                code = args[i + 1]
                break
            if lang == "python" and a.startswith("-") and not a.startswith("--") and "c" in a[1:]:
                k = a.index("c", 1)
                code = Arg(a[k + 1:], args[i].unresolved) if k + 1 < len(a) else (args[i + 1] if i + 1 < n else None)
                break
            if lang in ("perl", "ruby") and a.startswith("-") and not a.startswith("--") and a[-1:] in "eE" \
                    and len(a) > 2 and not a.startswith(("-M", "-I")) and i + 1 < n:
                code = args[i + 1]
                break
            if lang in ("perl", "ruby") and a.startswith(("-e", "-E")) and len(a) > 2:
                code = Arg(a[2:], args[i].unresolved)
                break
            if a == "-" or not a.startswith("-"):
                if a != "-":
                    if args[i].subs:
                        _mark_sink(args[i].subs)
                    elif a in ("/dev/stdin", "/dev/fd/0"):
                        cmd.actions.append(("stdin-code", None))
                    return None
                break
            if lang == "python" and a in ("-m", "-W", "-X", "-Q"):
                if a == "-m":
                    return None
                i += 2
                continue
            if lang in ("perl",) and a in ("-M", "-I", "-m"):
                i += 2
                continue
            if lang == "node" and a in ("-r", "--require", "--import"):
                i += 2
                continue
            i += 1
        if code is None:
            cmd.actions.append(("stdin-code", None))
            return None
        if code.subs:
            _mark_sink(code.subs)
        self.inline(cmd, lang, code.text, st, depth)
        return None

    def inline(self, cmd: Command, lang: str, code: str, st: _State, depth: int) -> None:
        from services.sentinel import inline_code

        if depth + 1 > MAX_DEPTH:
            self.r.problems.append(f"nesting deeper than {MAX_DEPTH} levels: {code[:80]}")
            return
        found = inline_code.analyse(lang, code, depth + 1)
        for kind, value in found:
            if kind == "shell" and value is not None:
                self.run_text(value, st.copy(), (*cmd.via, f"{lang} code"), depth + 1)
            elif kind == "problem":
                self.r.problems.append(f"{lang} code: {value}")
            elif kind == "forkbomb":
                self.r.forkbombs.append(f"{lang} fork loop")
            else:
                cmd.actions.append((kind, value))

    def feed(self, cmd: Command, st: _State, depth: int) -> None:
        """A command whose stdin is known: shells and interpreters reading code from it."""
        if ("stdin-code", None) not in cmd.actions:
            return
        if cmd.stdin == "pipe":
            _mark_sink(cmd.upstream)
        text = cmd.stdin_text
        if text is None:
            return
        prog = cmd.program
        label = f"{prog} <{cmd.stdin}"
        if prog in SHELLS:
            self.run_text(text, st.copy(), (*cmd.via, label), depth + 1)
        else:
            lang = "python" if prog in PYTHONS or prog.startswith("python") else prog
            if lang in ("nodejs", "deno", "bun"):
                lang = "node"
            self.inline(cmd, lang, text, st, depth)


def _backgrounded(toks: list[Tok], i: int, j: int, name: str) -> bool:
    for k in range(i, min(j, len(toks)) - 1):
        if toks[k].kind == "w" and toks[k].raw == name and toks[k + 1].kind == "op" and toks[k + 1].v == "&":
            return True
    return False


def _joined(args: list[Arg]) -> Arg:
    subs: list[Command] = []
    for a in args:
        subs.extend(a.subs)
    return Arg(" ".join(a.text for a in args), any(a.unresolved for a in args), subs=subs)


def _mark_sink(cmds: list[Command]) -> None:
    for c in cmds:
        c.exec_sink = True
        for u in c.upstream:
            u.exec_sink = True


_B64 = re.compile(r"[A-Za-z0-9+/=\s]+")


def _output_text(cmd: Command) -> str | None:
    """What a command writes to stdout, when that is visible in the command line itself."""
    if cmd.unknown_program or any(a.unresolved for a in cmd.args):
        return None
    prog = cmd.program
    argv = cmd.argv
    if prog == "echo":
        i = 1
        interp = False
        while i < len(argv) and re.compile(r"-[neE]+$").match(argv[i]):
            interp = interp or "e" in argv[i]
            i += 1
        text = " ".join(argv[i:])
        if interp:
            text = text.replace("\\n", "\n").replace("\\t", "\t")
        return text + "\n"
    if prog == "printf":
        rest = argv[1:]
        if rest and rest[0] == "--":
            rest = rest[1:]
        if not rest:
            return ""
        fmt = rest[0].replace("\\n", "\n").replace("\\t", "\t")
        if len(rest) > 1:
            fmt = fmt.replace("%s", "\x00").replace("%b", "\x00")
            pieces = fmt.split("\x00")
            out = [pieces[0]]
            for k, p in enumerate(pieces[1:]):
                out.append(rest[1 + k] if 1 + k < len(rest) else "")
                out.append(p)
            text = "".join(out)
            if 1 + len(pieces) - 1 < len(rest):
                text += " ".join(rest[len(pieces):])
            return text
        return fmt
    if (prog in ("cat", "tee") and all(a.startswith("-") for a in argv[1:])) or prog == "tee":
        if cmd.stdin_text is not None:
            return cmd.stdin_text
        return None
    if prog in ("base64", "openssl", "basenc") and cmd.stdin_text is not None and _is_decoder(cmd):
        import binascii

        try:
            return binascii.a2b_base64("".join(cmd.stdin_text.split())).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            return None
    return None


def _is_decoder(cmd: Command) -> bool:
    argv = cmd.argv
    prog = cmd.program
    if prog in ("base64", "basenc", "base32"):
        return any(a in ("-d", "--decode", "-D") or (a.startswith("-") and not a.startswith("--") and "d" in a)
                   for a in argv[1:])
    if prog == "openssl":
        return ("base64" in argv[1:3] or "-base64" in argv or "-a" in argv) and "-d" in argv
    if prog == "xxd":
        return any(a.startswith("-") and "r" in a and not a.startswith("--") for a in argv[1:])
    return prog in ("uudecode", "b64decode")


is_decoder = _is_decoder


def default_env() -> dict[str, str | None]:
    env: dict[str, str | None] = {}
    for name in ("HOME", "TMPDIR", "USER", "LOGNAME", "SHELL"):
        value = os.environ.get(name)
        if value:
            env[name] = value
    return env


def parse(text: str, cwd: str | None = None, env: dict[str, str | None] | None = None) -> Parse:
    """Parse one shell command line (a Bash tool call's `command`)."""
    result = Parse(text)
    vars_ = default_env() if env is None else dict(env)
    cwd = cwd or None
    if cwd and not cwd.startswith("/"):
        cwd = None
    if cwd:
        cwd = resolve(cwd, "/")
        vars_["PWD"] = cwd
    st = _State(cwd, vars_, {})
    parser = _Parser(result, _Budget(MAX_TOKENS))
    try:
        parser.run_text(text, st, (), 0)
    except _TooBig:
        result.problems.append("command too large to parse")
    except RecursionError:
        result.problems.append("command nested too deeply to parse")
    return result
