"""SENTINEL's detectors: one per rule class of the policy. Stdlib only (hook hot path).

A detector looks at one parsed shell command (`on_command`), at one path a non-shell tool touches (`on_path`),
at a whole parse (`on_parse`: fork bombs, what could not be understood) or at SQL text (`on_sql`), and returns
the subject that fired (a command or a path) or None. `CLASSES` maps the policy's `class` names to detectors and
to the parameters each accepts (`PARAMS`, validated by policy.py).
"""

from __future__ import annotations

import posixpath
import re

from services.sentinel.shell import Arg, Command, Parse, is_decoder, resolve

TYPE_CHECKING = False  # importing typing costs the hook ~3 ms; mypy still sees these names
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

# ------------------------------------------------------------------------------------------------ context


class _Lazy:
    """A regular expression compiled on first use (keeps the hook's import time down)."""

    __slots__ = ("_rx", "flags", "pattern")

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self.pattern, self.flags = pattern, flags
        self._rx: re.Pattern[str] | None = None

    @property
    def rx(self) -> re.Pattern[str]:
        if self._rx is None:
            self._rx = re.compile(self.pattern, self.flags)
        return self._rx

    def search(self, text: str) -> re.Match[str] | None:
        return self.rx.search(text)

    def match(self, text: str) -> re.Match[str] | None:
        return self.rx.match(text)

    def sub(self, repl: str, text: str) -> str:
        return self.rx.sub(repl, text)


class Ctx:
    """What a judgement needs from the environment: HOME, the temp dirs, the call's cwd."""

    __slots__ = ("cache", "cwd", "home", "tmpdirs")

    def __init__(self, home: str | None, tmpdirs: Iterable[str], cwd: str | None) -> None:
        import os

        self.home = posixpath.normpath(home) if home and home.startswith("/") else None
        self.cwd = cwd
        dirs = []
        for d in tmpdirs:
            if d in ("$TMPDIR", "${TMPDIR}"):
                d = os.environ.get("TMPDIR", "")
            d = self.expand(d)
            if d and d.startswith("/") and posixpath.normpath(d) != "/":
                dirs.append(posixpath.normpath(d))
        self.tmpdirs = tuple(dirs)
        self.cache: dict[Any, Any] = {}

    def expand(self, path: str) -> str:
        if self.home and (path == "~" or path.startswith("~/")):
            return self.home + path[1:]
        return path

    def with_temp(self, params: dict[str, Any]) -> Ctx:
        """This context with the temp dirs a rule's params name (`temp_dirs`), if any."""
        dirs = params.get("temp_dirs")
        if not dirs:
            return self
        key = ("temp", tuple(dirs))
        got = self.cache.get(key)
        if got is None:
            got = Ctx(self.home, dirs, self.cwd)
            got.cache = self.cache
            self.cache[key] = got
        return got

    def under_temp(self, path: str | None, allow_equal: bool = False) -> bool:
        if not path:
            return False
        return any(path.startswith(d + "/") or (allow_equal and path == d) for d in self.tmpdirs)


def arg_path(arg: Arg, cmd: Command, ctx: Ctx) -> str | None:
    """The absolute path an argument names, None when it cannot be known."""
    if arg.unresolved:
        return None
    return path_of(arg.text, cmd.cwd, ctx)


def path_of(text: str, cwd: str | None, ctx: Ctx) -> str | None:
    text = ctx.expand(text)
    return resolve(text, cwd)


# ------------------------------------------------------------------------------------------------ globs

def _glob_regex(glob: str) -> str:
    out: list[str] = []
    i = 0
    n = len(glob)
    while i < n:
        c = glob[i]
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if glob.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = glob.find("]", i + 1)
            if j < 0:
                out.append(re.escape(c))
            else:
                body = glob[i + 1:j]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = j
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


class Globs:
    """Path globs: `*` within a component, `**` across, `~` is HOME; a glob without `/` matches the basename."""

    __slots__ = ("_cache", "globs")

    def __init__(self, globs: Iterable[str]) -> None:
        self.globs = tuple(globs)
        self._cache: dict[str | None, re.Pattern[str] | None] = {}

    def regex(self, home: str | None) -> re.Pattern[str] | None:
        if home in self._cache:
            return self._cache[home]
        alts = []
        for g in self.globs:
            if g.startswith("~"):
                if not home:
                    continue
                g = home + g[1:]
            if "/" not in g:
                alts.append("(?:.*/)?" + _glob_regex(g))
            elif g.startswith("/"):
                alts.append(_glob_regex(g))
            else:
                alts.append("(?:.*/)?" + _glob_regex(g))
        rx = re.compile("(?:" + "|".join(alts) + r")/?\Z") if alts else None
        self._cache[home] = rx
        return rx

    def match(self, path: str, home: str | None) -> bool:
        rx = self.regex(home)
        return bool(rx and rx.match(path))


def check_glob(glob: str) -> None:
    re.compile(_glob_regex(glob))


# ------------------------------------------------------------------------------------------------ helpers

def short_flags(args: list[Arg], value_shorts: str = "", value_longs: Iterable[str] = ()
                ) -> tuple[set[str], dict[str, str | None], list[Arg]]:
    """(short flags, long flags → value, positionals) of an argument list (stops options at `--`)."""
    shorts: set[str] = set()
    longs: dict[str, str | None] = {}
    pos: list[Arg] = []
    vl = frozenset(value_longs)
    i = 0
    n = len(args)
    while i < n:
        a = args[i].text
        if a == "--":
            pos.extend(args[i + 1:])
            break
        if a.startswith("--") and not args[i].unresolved:
            name, eq, value = a.partition("=")
            if not eq and name in vl and i + 1 < n:
                longs[name] = args[i + 1].text
                i += 2
                continue
            longs[name] = value if eq else None
        elif a.startswith("-") and len(a) > 1 and not args[i].unresolved:
            for k, ch in enumerate(a[1:], 1):
                shorts.add(ch)
                if ch in value_shorts:
                    if k == len(a) - 1:
                        i += 1
                    break
        else:
            pos.append(args[i])
        i += 1
    return shorts, longs, pos


def cmd_text(cmd: Command, limit: int = 300) -> str:
    parts = []
    for a in cmd.args:
        t = a.text
        if not t or any(c in t for c in " \t\n'\"$`\\;&|<>()*?"):
            t = "'" + t.replace("'", "'\\''") + "'"
        parts.append(t)
    text = " ".join(parts)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _critical(path: str | None, ctx: Ctx) -> bool:
    """/, a top-level directory, /home/<user>, HOME or one of its ancestors."""
    if path is None:
        return True
    path = path.rstrip("/") or "/"
    if path.count("/") <= 1:
        return True
    if path.startswith("/home/") and path.count("/") == 2:
        return True
    return bool(ctx.home and (path == ctx.home or ctx.home.startswith(path + "/")))


# ------------------------------------------------------------------------------------------------ rm

def rm_recursive_force(cmd: Command, params: dict[str, Any], ctx: Ctx) -> str | None:
    ctx = ctx.with_temp(params)
    if cmd.program not in ("rm", "grm") or any(v.startswith("find -") for v in cmd.via):
        return None
    shorts, longs, pos = short_flags(cmd.args[1:])
    recursive = bool({"r", "R"} & shorts) or "--recursive" in longs
    force = "f" in shorts or "--force" in longs
    if not recursive:
        return None
    if not pos:
        return None
    for a in pos:
        p = arg_path(a, cmd, ctx)
        if force and not ctx.under_temp(p):
            return cmd_text(cmd)
        if not force and _critical(p, ctx) and not ctx.under_temp(p):
            return cmd_text(cmd)
    return None


_DELETERS = frozenset({"rm", "unlink", "shred", "rmdir", "srm", "grm"})


def find_delete(cmd: Command, params: dict[str, Any], ctx: Ctx) -> str | None:
    ctx = ctx.with_temp(params)
    if cmd.program not in ("find", "gfind", "fd", "fdfind"):
        return None
    args = cmd.args
    if cmd.program in ("fd", "fdfind"):
        hit = any(a.text in ("-x", "--exec", "-X", "--exec-batch") and i + 1 < len(args)
                  and posixpath.basename(args[i + 1].text) in _DELETERS for i, a in enumerate(args))
        return cmd_text(cmd) if hit and not ctx.under_temp(ctx.cwd) else None
    i = 1
    while i < len(args) and args[i].text in ("-H", "-L", "-P"):
        i += 1
    roots = []
    while i < len(args) and not args[i].text.startswith("-") and args[i].text not in ("(", "!", ")"):
        roots.append(args[i])
        i += 1
    destructive = False
    while i < len(args):
        a = args[i].text
        if a == "-delete":
            destructive = True
        elif a in ("-exec", "-execdir", "-ok", "-okdir") and i + 1 < len(args):
            prog = posixpath.basename(args[i + 1].text)
            if prog in _DELETERS:
                destructive = True
            elif prog in ("sh", "bash", "zsh", "dash", "xargs", "sudo", "env"):
                j = i + 1
                while j < len(args) and args[j].text not in (";", "+"):
                    if re.search(r"(^|[\s;&|])(sudo\s+)?(rm|unlink|shred)(\s|$)", args[j].text) or \
                            posixpath.basename(args[j].text) in _DELETERS:
                        destructive = True
                    j += 1
        i += 1
    if not destructive:
        return None
    if not roots:
        roots = [Arg(".")]
    for r in roots:
        if not ctx.under_temp(arg_path(r, cmd, ctx), allow_equal=True):
            return cmd_text(cmd)
    return None


def interpreter_rmtree(cmd: Command, params: dict[str, Any], ctx: Ctx) -> str | None:
    ctx = ctx.with_temp(params)
    for kind, value in cmd.actions:
        if kind != "rmtree":
            continue
        if value is None:
            return cmd_text(cmd)
        p = path_of(value, cmd.cwd, ctx)
        if not ctx.under_temp(p):
            return cmd_text(cmd)
    return None


# ------------------------------------------------------------------------------------------------ git

_GIT_VALUE_OPTS = frozenset({"-C", "-c", "--git-dir", "--work-tree", "--namespace", "--exec-path", "--config-env",
                             "--super-prefix", "--list-cmds", "--attr-source"})


def git_parts(cmd: Command) -> tuple[list[str], str, list[Arg]] | None:
    """(-c configs, subcommand, arguments after it) of a git command."""
    if cmd.program != "git":
        return None
    args = cmd.args
    configs: list[str] = []
    i = 1
    while i < len(args):
        a = args[i].text
        if a in _GIT_VALUE_OPTS:
            if a == "-c" and i + 1 < len(args):
                configs.append(args[i + 1].text)
            i += 2
            continue
        if a.startswith("-c") and len(a) > 2:
            configs.append(a[2:])
            i += 1
            continue
        if a.startswith("-"):
            i += 1
            continue
        return configs, a, args[i + 1:]
    return configs, "", []


def git_reset_hard(cmd: Command, params: dict[str, Any], ctx: Ctx) -> str | None:
    g = git_parts(cmd)
    if g and g[1] == "reset":
        _, longs, _ = short_flags(g[2])
        if "--hard" in longs or "--merge" in longs:
            return cmd_text(cmd)
    return None


def git_force_push(cmd: Command, params: dict[str, Any], ctx: Ctx) -> str | None:
    g = git_parts(cmd)
    if not g or g[1] != "push":
        return None
    shorts, longs, pos = short_flags(g[2], "o", ("--repo", "--push-option", "--receive-pack", "--exec"))
    if "n" in shorts or "--dry-run" in longs:
        return None
    force = "f" in shorts or "--force" in longs or "--force-with-lease" in longs or "--mirror" in longs
    if not force and any(a.text.startswith("+") for a in pos[1:]):
        force = True
    if not force and len(pos) == 1 and pos[0].text.startswith("+"):
        force = True
    return cmd_text(cmd) if force else None


def git_clean_force(cmd: Command, params: dict[str, Any], ctx: Ctx) -> str | None:
    g = git_parts(cmd)
    if not g or g[1] != "clean":
        return None
    shorts, longs, _ = short_flags(g[2], "e", ("--exclude",))
    if "n" in shorts or "--dry-run" in longs:
        return None
    if "f" in shorts or "--force" in longs:
        return cmd_text(cmd)
    return None


def git_discard_worktree(cmd: Command, params: dict[str, Any], ctx: Ctx) -> str | None:
    g = git_parts(cmd)
    if not g:
        return None
    sub, rest = g[1], g[2]
    if sub == "checkout":
        shorts, longs, pos = short_flags(rest, "bB", ("--orphan", "--conflict", "--pathspec-from-file"))
        if "f" in shorts or "--force" in longs:
            return cmd_text(cmd)
        if "b" in shorts or "B" in shorts or "--orphan" in longs:
            return None
        if any(a.text == "--" for a in rest):
            after = rest[[a.text for a in rest].index("--") + 1:]
            return cmd_text(cmd) if after else None
        for a in pos:
            t = a.text
            if t in (".", "./", ":/", "*") or t.startswith("./") or (a.glob and not a.quoted):
                return cmd_text(cmd)
        return None
    if sub == "restore":
        shorts, longs, pos = short_flags(rest, "s", ("--source",))
        staged = "S" in shorts or "--staged" in longs
        worktree = "W" in shorts or "--worktree" in longs
        if worktree or not staged:
            return cmd_text(cmd)
        return None
    if sub == "switch":
        shorts, longs, _ = short_flags(rest, "cC", ("--create", "--force-create", "--orphan"))
        if "f" in shorts or "--force" in longs or "--discard-changes" in longs:
            return cmd_text(cmd)
    return None


def git_history_destroy(cmd: Command, params: dict[str, Any], ctx: Ctx) -> str | None:
    g = git_parts(cmd)
    if not g:
        return None
    sub, rest = g[1], g[2]
    words = [a.text for a in rest]
    if sub == "stash" and words and words[0] in ("drop", "clear"):
        return cmd_text(cmd)
    if sub == "branch":
        shorts, longs, _ = short_flags(rest)
        delete = "d" in shorts or "--delete" in longs
        force = "f" in shorts or "--force" in longs
        if "D" in shorts or (delete and force):
            return cmd_text(cmd)
    if sub in ("filter-branch", "filter-repo"):
        return cmd_text(cmd)
    expire_now = ("--expire=now", "--expire=all", "--expire-unreachable=now", "--expire-unreachable=all")
    if sub == "reflog" and words and (words[0] == "delete" or (words[0] == "expire" and any(
            w.startswith(expire_now) for w in words))):
        return cmd_text(cmd)
    if sub == "gc" and any(w in ("--prune=now", "--prune=all") for w in words):
        return cmd_text(cmd)
    return None


def hook_bypass(cmd: Command, params: dict[str, Any], ctx: Ctx) -> str | None:
    env_names = params.get("env", ["HUSKY=0", "HUSKY_SKIP_HOOKS=1", "SKIP_HOOKS=1"])
    for name, value in cmd.env.items():
        if f"{name}={value}" in env_names and cmd.program in ("git", "npm", "npx", "yarn", "pnpm", "pre-commit",
                                                                  "husky"):
            return cmd_text(cmd)
    if cmd.program in ("export",):
        for a in cmd.args[1:]:
            if a.text in env_names:
                return cmd_text(cmd)
    if cmd.program == "pre-commit" and "SKIP" in cmd.env:
        return cmd_text(cmd)
    g = git_parts(cmd)
    if not g:
        return None
    configs, sub, rest = g
    if any(c.lower().startswith("core.hookspath") for c in configs):
        return cmd_text(cmd)
    words = [a.text for a in rest]
    if sub == "config" and any(w.lower() == "core.hookspath" for w in words) and len(
            [w for w in words if not w.startswith("-")]) >= 2:
        return cmd_text(cmd)
    if sub in ("commit", "push", "merge", "rebase", "am", "cherry-pick", "revert", "pull"):
        if "--no-verify" in words:
            return cmd_text(cmd)
        if sub == "commit":
            shorts, _, _ = short_flags(rest, "mFcCt", ("--message", "--file", "--author", "--date", "--template",
                                                       "--reuse-message", "--reedit-message", "--fixup",
                                                       "--squash", "--trailer", "--cleanup"))
            if "n" in shorts:
                return cmd_text(cmd)
    return None


# ------------------------------------------------------------------------------------------------ SQL

_SQL_CLIENTS = {"psql": ("c", ("--command",)), "mysql": ("e", ("--execute",)), "mariadb": ("e", ("--execute",)),
                "sqlite3": ("", ("-cmd",)), "duckdb": ("c", ("-cmd", "-c")), "clickhouse-client": ("q", ("--query",)),
                "cockroach": ("e", ("--execute",)), "sqlcmd": ("Q", ("-Q", "-q")), "pgcli": ("", ()),
                "mycli": ("e", ("--execute",)), "litecli": ("e", ("--execute",)), "usql": ("c", ("--command",))}
_SQL_COMMENT = _Lazy(r"/\*.*?\*/|--[^\n]*|#[^\n]*", re.S)
_SQL_STRING = _Lazy(r"'(?:[^']|'')*'?")
_SQL_DROP = _Lazy(r"\b(?:DROP\s+(?:TEMP(?:ORARY)?\s+)?(?:TABLE|DATABASE|SCHEMA)|TRUNCATE)\b", re.I)


def sql_is_destructive(text: str, params: dict[str, Any] | None = None) -> bool:
    text = _SQL_STRING.sub("''", _SQL_COMMENT.sub(" ", text))
    regex = (params or {}).get("regex")
    rx = re.compile(regex, re.I) if isinstance(regex, str) else _SQL_DROP
    return bool(rx.search(text))


def sql_texts(cmd: Command) -> list[str]:
    """The SQL a client command runs, as far as it is visible."""
    prog = cmd.program
    if prog not in _SQL_CLIENTS:
        return []
    short, longs = _SQL_CLIENTS[prog]
    out: list[str] = []
    args = cmd.args
    positional: list[str] = []
    i = 1
    while i < len(args):
        a = args[i].text
        if a in longs or (short and a == "-" + short):
            if i + 1 < len(args):
                out.append(args[i + 1].text)
            i += 2
            continue
        name, eq, value = a.partition("=")
        if eq and name in longs:
            out.append(value)
        elif short and a.startswith("-" + short) and len(a) > 2 and not a.startswith("--"):
            out.append(a[2:])
        elif a.startswith("-"):
            if prog == "sqlite3" and a in ("-separator", "-newline", "-nullvalue", "-init", "-vfs", "-mmap",
                                           "-maxsize", "-pagecache", "-lookaside", "-heap"):
                i += 1
        else:
            positional.append(a)
        i += 1
    if prog in ("sqlite3", "duckdb", "litecli") and len(positional) > 1:
        out.extend(positional[1:])
    if cmd.stdin_text:
        out.append(cmd.stdin_text)
    return out


def sql_drop(cmd: Command, params: dict[str, Any], ctx: Ctx) -> str | None:
    if cmd.program in ("dropdb",):
        return cmd_text(cmd)
    if cmd.program == "mysqladmin" and any(a.text.lower() == "drop" for a in cmd.args[1:]):
        return cmd_text(cmd)
    for text in sql_texts(cmd):
        if sql_is_destructive(text, params):
            return cmd_text(cmd)
    return None


# ------------------------------------------------------------------------------------------------ paths

# commands that only look at metadata (or use a key without reading it out)
METADATA = frozenset({"ls", "stat", "test", "[", "[[", "file", "chmod", "chown", "chgrp", "touch", "du", "readlink",
                      "realpath", "basename", "dirname", "echo", "printf", "mkdir", "which", "type", "ssh", "getent",
                      "lsattr", "exa", "eza", "tree", "true", "false", ":", "cd", "pushd", "export", "local",
                      "declare", "id", "whoami", "command", "hash", "umask"})


def command_paths(cmd: Command, ctx: Ctx) -> list[tuple[str, str]]:
    """(path, access) for every path-looking word, redirect target and interpreter file access of a command.

    access: `meta` (metadata only), `read`, `write`, `use` (a key given to ssh/scp -i), `mention`.
    """
    key = ("paths", id(cmd))
    cached = ctx.cache.get(key)
    if cached is not None:
        return cached
    out: list[tuple[str, str]] = []
    prog = cmd.program
    access = "meta" if prog in METADATA else "read"
    if prog == "ssh-keygen":
        shorts, _, _ = short_flags(cmd.args[1:], "fCNtbZIOnVzPsrEmag")
        access = "read" if ({"y", "e", "p"} & shorts) else "meta"
    if prog == "find":
        access = "meta" if not any(a.text in ("-exec", "-execdir", "-ok", "-okdir", "-fprint") for a in cmd.args) \
            else "read"
    skip_next = False
    for a in cmd.args[1:]:
        if skip_next:
            skip_next = False
            out.extend((p, "use") for p in _candidates(a, cmd, ctx))
            continue
        if prog in ("scp", "sftp", "rsync", "ssh-copy-id") and a.text in ("-i", "-F", "-e", "-o"):
            skip_next = True
            continue
        if a.unresolved and not a.text:
            continue
        for p in _candidates(a, cmd, ctx):
            out.append((p, access))
    for r in cmd.redirects:
        if (r.target is not None and not r.target.unresolved and r.op not in (">&", "<&")) or (
                r.target is not None and r.op in (">&", "<&") and not r.target.text.isdigit()
                and r.target.text != "-"):
            assert r.target is not None
            rp = path_of(r.target.text, cmd.cwd, ctx)
            if rp:
                out.append((rp, "write" if r.writes else "read"))
    for kind, value in cmd.actions:
        if kind in ("read", "write", "mention") and value:
            out.append((path_of(value, cmd.cwd, ctx) or value, kind))
    ctx.cache[key] = out
    return out


def _candidates(a: Arg, cmd: Command, ctx: Ctx) -> list[str]:
    t = a.text
    if not t or (a.unresolved and "/" not in t) or len(t) > 4096:
        return []
    texts = [t]
    if "=" in t:
        texts.append(t.split("=", 1)[1])
    if "@" in t:
        texts.append(t.rsplit("@", 1)[1])
    if t.startswith("-") and len(t) > 2 and t[1] != "-":
        texts.append(t[2:])  # -fFILE
    out = []
    for x in texts:
        if not x or (x.startswith("-") and x is t):
            continue
        if re.match(r"[\w.-]+(?:@[\w.-]+)?:", x) and not x.startswith("/"):  # host:path
            continue
        if "://" in x:
            if x.startswith("file://"):
                x = x[7:]
            else:
                continue
        p = path_of(x, cmd.cwd, ctx)
        out.append(p if p else posixpath.normpath(x))
    return out


def _path_rule(globs_key: str = "globs", except_key: str = "except", meta_ok: bool = True
               ) -> tuple[Callable[[Command, dict[str, Any], Ctx], str | None], Callable[[str, str, dict[str, Any],
                                                                                           Ctx], bool]]:
    def matcher(params: dict[str, Any], ctx: Ctx) -> tuple[Globs, Globs]:
        key = ("globs", id(params))
        m = ctx.cache.get(key)
        if m is None:
            m = (_globs(params.get(globs_key, [])), _globs(params.get(except_key, [])))
            ctx.cache[key] = m
        return m

    def hit(path: str, access: str, params: dict[str, Any], ctx: Ctx) -> bool:
        if meta_ok and access in ("meta", "use"):
            return False
        inc, exc = matcher(params, ctx)
        return inc.match(path, ctx.home) and not exc.match(path, ctx.home)

    def on_command(cmd: Command, params: dict[str, Any], ctx: Ctx) -> str | None:
        extra_meta = params.get("metadata_commands")
        for path, access in command_paths(cmd, ctx):
            if extra_meta and cmd.program in extra_meta and access == "read":
                access = "meta"
            if hit(path, access, params, ctx):
                return path
        return None

    return on_command, hit


_GLOBS_CACHE: dict[tuple[str, ...], Globs] = {}


def _globs(items: list[str]) -> Globs:
    key = tuple(items)
    g = _GLOBS_CACHE.get(key)
    if g is None:
        g = _GLOBS_CACHE[key] = Globs(key)
    return g


secret_cmd, secret_path = _path_rule()
env_cmd, env_path = _path_rule()
path_cmd, path_path = _path_rule(meta_ok=False)


def system_credentials(cmd: Command, params: dict[str, Any], ctx: Ctx) -> str | None:
    return secret_cmd(cmd, params, ctx)


# ------------------------------------------------------------------------------------------------ misc

_DOWNLOADERS = frozenset({"curl", "wget", "fetch", "aria2c", "http", "https", "xh", "lwp-request", "GET", "lynx",
                          "links", "wget2", "curlie", "httpie", "ftp", "tftp", "nc", "ncat", "socat", "openssl"})


def download_to_shell(cmd: Command, params: dict[str, Any], ctx: Ctx) -> str | None:
    if ("exec-download", None) in cmd.actions:
        return cmd_text(cmd)
    if not cmd.exec_sink:
        return None
    prog = cmd.program
    if (prog in _DOWNLOADERS and prog != "openssl") or is_decoder(cmd):
        return cmd_text(cmd)
    if prog == "openssl" and any(a.text == "s_client" for a in cmd.args):
        return cmd_text(cmd)
    if prog in ("python", "python3", "perl", "ruby", "node", "php") and any(
            k == "exec-download" for k, _ in cmd.actions):
        return cmd_text(cmd)
    return None


_DEVICE = _Lazy(r"^/dev/(?:sd[a-z]|hd[a-z]|vd[a-z]|xvd[a-z]|nvme\d|mmcblk\d|disk\d|rdisk\d|disk/|mapper/|dm-\d|"
                     r"md\d|loop\d|nbd\d|sr\d|root\b)")
_DEVICE_TOOLS = frozenset({"mkfs", "mke2fs", "mkswap", "wipefs", "shred", "fdisk", "sfdisk", "cfdisk", "parted",
                           "sgdisk", "gdisk", "blkdiscard", "badblocks", "mkdosfs", "mkntfs", "tee", "cp", "cat",
                           "pv", "zpool", "cryptsetup", "dcfldd", "dc3dd", "ddrescue", "hdparm", "nvme"})


def _is_device(path: str | None) -> bool:
    return bool(path and _DEVICE.match(path))


def block_device_write(cmd: Command, params: dict[str, Any], ctx: Ctx) -> str | None:
    for r in cmd.redirects:
        if r.writes and r.target is not None and _is_device(path_of(r.target.text, cmd.cwd, ctx)):
            return cmd_text(cmd)
    prog = cmd.program
    if prog in ("dd", "dcfldd", "dc3dd"):
        for a in cmd.args[1:]:
            if a.text.startswith("of=") and _is_device(path_of(a.text[3:], cmd.cwd, ctx)):
                return cmd_text(cmd)
        return None
    if prog.startswith(("mkfs", "mkfs.")) or prog in _DEVICE_TOOLS:
        positional = [a for a in cmd.args[1:] if not a.text.startswith("-")]
        if prog in ("cat", "pv", "hdparm", "nvme", "badblocks"):
            return None
        if prog in ("cp", "ddrescue") and positional:
            positional = positional[-1:]
        for a in positional:
            if _is_device(path_of(a.text, cmd.cwd, ctx)):
                return cmd_text(cmd)
    return None


_WORLD_MODE = _Lazy(r"^(?:0?[0-7]?[0-7][0-7][2367]|(?:[ugo]*a[ugoa]*|[ugoa]*o[ugoa]*|)[+=][rwxXst]*w[rwxXst]*)$")


def chmod_777_recursive(cmd: Command, params: dict[str, Any], ctx: Ctx) -> str | None:
    if cmd.program not in ("chmod", "chown") or cmd.program == "chown":
        return None
    shorts, longs, pos = short_flags(cmd.args[1:])
    if not ("R" in shorts or "--recursive" in longs):
        return None
    if len(pos) < 2:
        return None
    modes = [m.text for m in pos[:1]]
    if not any(_WORLD_MODE.match(part) for m in modes for part in m.split(",")):
        return None
    for a in pos[1:]:
        p = arg_path(a, cmd, ctx)
        if p is None:
            continue
        if a.glob and p.endswith("/*"):
            p = p[:-2] or "/"
        if _critical(p, ctx):
            return cmd_text(cmd)
    return None


def fork_bomb_parse(parse: Parse, params: dict[str, Any], ctx: Ctx) -> str | None:
    return parse.forkbombs[0] if parse.forkbombs else None


_TOKENS = _Lazy(r"[\w.=/+-]+")
_DESTRUCTIVE_TOKEN = _Lazy(r"(?:rm|dd|mkfs[\w.]*|mke2fs|shred|wipefs|truncate|drop|dropdb|rmtree|rmdir|unlink|fdisk|"
                           r"--recursive|--force|-[a-z]{0,4}(?:r[a-z]{0,3}f|f[a-z]{0,3}r)|of=/dev/.*)", re.I)
_DEVICE_REDIRECT = _Lazy(r">\s*/dev/(?:sd|nvme|hd|vd|xvd|mmcblk|disk)")


def destructive(text: str, regex: str | None = None) -> bool:
    """Does the text carry a destructive token (rm, -rf, dd, mkfs, DROP, shred, > /dev/sd…)?"""
    text = text[: 1 << 20]
    if regex:
        return bool(re.compile(regex).search(text))
    low = text.lower()
    if not any(k in low for k in ("rm", "dd", "mk", "shred", "wipefs", "truncate", "drop", "unlink", "fdisk", "-",
                                  "of=")):
        return False
    if _DEVICE_REDIRECT.search(text):
        return True
    full = _DESTRUCTIVE_TOKEN.rx.fullmatch
    for m in _TOKENS.rx.finditer(text):
        tok = m.group()
        if len(tok) > 40:
            continue
        if full(tok) or ("/" in tok and full(tok.rsplit("/", 1)[1])):
            return True
    return False


def unparseable_parse(parse: Parse, params: dict[str, Any], ctx: Ctx) -> str | None:
    regex = params.get("regex")
    if parse.problems and destructive(parse.text, regex):
        return f"{parse.problems[0]}: {parse.text[:200]}"
    seen: set[str] = set()
    for cmd in parse.commands:
        if cmd.unknown_program and cmd.raw not in seen:
            seen.add(cmd.raw)
            if destructive(cmd.raw[:65536], regex):
                return f"unknown program: {cmd.raw[:200]}"
    return None


# ------------------------------------------------------------------------------------------------ generic

def command_rule(cmd: Command, params: dict[str, Any], ctx: Ctx) -> str | None:
    programs = params.get("program")
    if isinstance(programs, str):
        programs = [programs]
    if programs and cmd.program not in programs:
        return None
    rest = cmd.args[1:]
    sub = params.get("subcommand")
    if sub:
        g = git_parts(cmd)
        if g is not None:
            first, rest = g[1], g[2]
        else:
            positional = [a for a in rest if not a.text.startswith("-")]
            first = positional[0].text if positional else ""
        if first != sub:
            return None
    words = [a.text for a in rest]
    for want in params.get("args", []):
        if want in words:
            continue
        if want.startswith("--") and any(w.startswith(want + "=") for w in words):
            continue
        if len(want) == 2 and want[0] == "-" and want[1] != "-" and any(
                w.startswith("-") and not w.startswith("--") and want[1] in w[1:] for w in words):
            continue
        return None
    return cmd_text(cmd)


def pattern_rule(cmd: Command, params: dict[str, Any], ctx: Ctx) -> str | None:
    rx = ctx.cache.get(("rx", params.get("regex")))
    if rx is None:
        rx = re.compile(str(params.get("regex", "")))
        ctx.cache[("rx", params.get("regex"))] = rx
    text = " ".join(cmd.argv)
    return cmd_text(cmd) if rx.search(text) else None


# ------------------------------------------------------------------------------------------------ registry

class Detector:
    __slots__ = ("on_command", "on_parse", "on_path", "on_sql", "params")

    def __init__(self, params: dict[str, str], on_command: Callable[[Command, dict[str, Any], Ctx], str | None]
                 | None = None, on_path: Callable[[str, str, dict[str, Any], Ctx], bool] | None = None,
                 on_parse: Callable[[Parse, dict[str, Any], Ctx], str | None] | None = None,
                 on_sql: Callable[[str, dict[str, Any]], bool] | None = None) -> None:
        self.params, self.on_command, self.on_path = params, on_command, on_path
        self.on_parse, self.on_sql = on_parse, on_sql


# param types: strs (list of strings), str, regex, strs_or_str, globs
_TEMP = {"temp_dirs": "strs"}
_PATHS = {"globs": "globs", "except": "globs", "metadata_commands": "strs"}

CLASSES: dict[str, Detector] = {
    "rm-recursive-force": Detector(_TEMP, rm_recursive_force),
    "find-delete": Detector(_TEMP, find_delete),
    "interpreter-rmtree": Detector(_TEMP, interpreter_rmtree),
    "git-reset-hard": Detector({}, git_reset_hard),
    "git-force-push": Detector({}, git_force_push),
    "git-clean-force": Detector({}, git_clean_force),
    "git-discard-worktree": Detector({}, git_discard_worktree),
    "git-history-destroy": Detector({}, git_history_destroy),
    "sql-drop": Detector({"regex": "regex"}, sql_drop, on_sql=lambda text, p: sql_is_destructive(text, p)),
    "secret-file-read": Detector(_PATHS, secret_cmd, secret_path),
    "system-credentials": Detector(_PATHS, system_credentials, secret_path),
    "download-to-shell": Detector({}, download_to_shell),
    "block-device-write": Detector({}, block_device_write),
    "chmod-777-recursive": Detector({}, chmod_777_recursive),
    "fork-bomb": Detector({}, on_parse=fork_bomb_parse),
    "unparseable-destructive": Detector({"regex": "regex"}, on_parse=unparseable_parse),
    "env-file-access": Detector(_PATHS, env_cmd, env_path),
    "hook-bypass": Detector({"env": "strs"}, hook_bypass),
    # generic classes, for user rules
    "command": Detector({"program": "strs_or_str", "args": "strs", "subcommand": "str"}, command_rule),
    "path": Detector({"globs": "globs", "except": "globs"}, path_cmd, path_path),
    "pattern": Detector({"regex": "regex"}, pattern_rule),
}
GENERIC = frozenset({"command", "path", "pattern"})
REQUIRED_PARAMS = {"command": ("program",), "path": ("globs",), "pattern": ("regex",)}
