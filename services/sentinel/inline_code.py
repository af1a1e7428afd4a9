"""Inline interpreter code (`python -c`, `node -e`, `perl -e`, `ruby -e`): what it would do. Stdlib only.

`analyse(lang, code, depth)` returns a list of `(kind, value)`:
- `("shell", text)`: a shell command line the code runs (os.system, subprocess, child_process, system, backticks);
- `("rmtree", path or None)`: a recursive delete (None: the path is not a constant);
- `("read", path)` / `("write", path)`: a file the code opens, or a path literal naming a sensitive file;
- `("exec-download", url)`: code downloaded and executed (`exec(urlopen(…).read())`);
- `("forkbomb", None)`, `("problem", message)`.
Python is parsed with `ast`; the other languages with heuristics over their string literals.
"""

from __future__ import annotations

import re

TYPE_CHECKING = False  # importing typing costs the hook ~3 ms; mypy still sees these names
if TYPE_CHECKING:
    from typing import Any
Finding = tuple[str, "str | None"]

_SHELL_FUNCS = frozenset({"system", "popen", "run", "call", "Popen", "check_output", "check_call", "getoutput",
                          "getstatusoutput", "spawn", "popen2", "popen3", "popen4"})
_EXEC_FUNCS = frozenset({"execv", "execve", "execvp", "execvpe", "execl", "execle", "execlp", "execlpe", "spawnv",
                         "spawnve", "spawnvp", "spawnvpe", "spawnl", "spawnlp", "posix_spawn", "posix_spawnp"})
_RMTREE_FUNCS = frozenset({"rmtree", "removedirs", "rmdir_recursive", "remove_tree"})
_READ_FUNCS = frozenset({"open", "read_text", "read_bytes", "copy", "copy2", "copyfile", "copyfileobj", "move",
                         "make_archive", "add", "write"})
_DOWNLOAD = frozenset({"urlopen", "urlretrieve", "get", "post", "request", "urlread"})
_PATHLIKE = re.compile(r"^(~|/|\.{1,2}/|[\w.-]+/)|(^|/)(\.env[\w.-]*|\.envrc|id_\w+|[\w.-]+\.(pem|key|p12|pfx)|"
                       r"credentials|\.netrc|shadow|gshadow|passwd|config\.json)$")


def _sq(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def argv_to_shell(items: list[str]) -> str:
    return " ".join(_sq(x) for x in items)


# ------------------------------------------------------------------------------------------------ python

class _Py:
    def __init__(self, code: str, depth: int) -> None:
        self.code = code
        self.depth = depth
        self.out: list[Finding] = []
        self.consts: dict[str, Any] = {}
        self.aliases: dict[str, str] = {}

    def name_of(self, node: Any) -> str:
        import ast

        if isinstance(node, ast.Name):
            return self.aliases.get(node.id, node.id)
        if isinstance(node, ast.Attribute):
            return self.name_of(node.value) + "." + node.attr
        if isinstance(node, ast.Call):
            inner = self.name_of(node.func)
            if inner in ("__import__", "importlib.import_module") and node.args:
                mod = self.const(node.args[0])
                if isinstance(mod, str):
                    return mod
            if inner.endswith("Path") or inner.endswith("PurePath"):
                return "Path()"
            return inner + "()"
        if isinstance(node, ast.Subscript):
            return self.name_of(node.value) + "[]"
        return "?"

    def const(self, node: Any, depth: int = 0) -> Any:
        """A constant value for simple expressions (str, list of str), else None."""
        import ast

        if depth > 20:
            return None
        if isinstance(node, ast.Constant):
            return node.value if isinstance(node.value, (str, bytes, int)) else None
        if isinstance(node, ast.Name):
            return self.consts.get(node.id)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Div)):
            left, right = self.const(node.left, depth + 1), self.const(node.right, depth + 1)
            if isinstance(node.op, ast.Div) and isinstance(left, str) and isinstance(right, str):
                return left.rstrip("/") + "/" + right
            if isinstance(left, str) and isinstance(right, str):
                return left + right
            if isinstance(left, list) and isinstance(right, list):
                return left + right
            return None
        if isinstance(node, ast.JoinedStr):
            pieces = []
            for v in node.values:
                if isinstance(v, ast.Constant) and isinstance(v.value, str):
                    pieces.append(v.value)
                elif isinstance(v, ast.FormattedValue):
                    inner = self.const(v.value, depth + 1)
                    if not isinstance(inner, str):
                        return None
                    pieces.append(inner)
                else:
                    return None
            return "".join(pieces)
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [self.const(e, depth + 1) for e in node.elts]
            return items if all(isinstance(x, str) for x in items) else None
        if isinstance(node, ast.Call):
            fn = self.name_of(node.func)
            args = [self.const(a, depth + 1) for a in node.args]
            last = fn.rsplit(".", 1)[-1]
            if fn in ("os.path.join", "posixpath.join") and args and all(isinstance(a, str) for a in args):
                out = ""
                for a in args:
                    out = a if a.startswith("/") else (out.rstrip("/") + "/" + a if out else a)
                return out
            if last in ("expanduser", "expandvars", "abspath", "realpath", "normpath", "str", "fspath",
                        "Path", "PurePath", "PosixPath", "resolve", "absolute") and len(args) == 1 \
                    and isinstance(args[0], str):
                return args[0]
            if fn == "Path()." + last or fn.endswith("Path.home") or fn == "os.path.expanduser":
                pass
            if fn in ("pathlib.Path.home", "Path.home", "os.getcwd", "os.path.expanduser"):
                return "~" if "home" in fn else None
            if last in ("mkdtemp", "gettempdir", "mktemp", "TemporaryDirectory"):
                return "/tmp/sentinel-temp"
            if last == "split" and isinstance(node.func, ast.Attribute) and not node.args:
                base = self.const(node.func.value, depth + 1)
                return base.split() if isinstance(base, str) else None
            if last == "join" and isinstance(node.func, ast.Attribute) and len(args) == 1 \
                    and isinstance(args[0], list):
                sep = self.const(node.func.value, depth + 1)
                return sep.join(args[0]) if isinstance(sep, str) else None
            if last in ("b64decode", "decodebytes", "standard_b64decode", "urlsafe_b64decode") and args \
                    and isinstance(args[0], (str, bytes)):
                import binascii

                try:
                    return binascii.a2b_base64(args[0])
                except (binascii.Error, ValueError):
                    return None
            if last == "decode" and isinstance(node.func, ast.Attribute):
                base = self.const(node.func.value, depth + 1)
                if isinstance(base, bytes):
                    return base.decode("utf-8", "replace")
            if last == "fromhex" and args and isinstance(args[0], str):
                try:
                    return bytes.fromhex(args[0])
                except ValueError:
                    return None
            return None
        return None

    def path_of(self, node: Any) -> str | None:
        """The path a `Path(x)` receiver or a plain argument stands for."""
        import ast

        value = self.const(node)
        if isinstance(value, str):
            return value
        if isinstance(node, ast.Call) and node.args:
            return self.path_of(node.args[0])
        return None

    def run(self) -> list[Finding]:
        import ast

        try:
            tree = ast.parse(self.code)
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            self.out.append(("problem", f"python does not parse ({type(exc).__name__})"))
            return self.out
        nodes = list(ast.walk(tree))
        for node in nodes:  # imports and constant assignments first
            if isinstance(node, ast.Import):
                for a in node.names:
                    self.aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom):
                for a in node.names:
                    self.aliases[a.asname or a.name] = f"{node.module or ''}.{a.name}"
        for node in nodes:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                value = self.const(node.value)
                if value is not None:
                    self.consts[node.targets[0].id] = value
            elif isinstance(node, ast.While):
                body = list(ast.walk(ast.Module(body=node.body, type_ignores=[])))
                if any(isinstance(b, ast.Call) and self.name_of(b.func).endswith("fork") for b in body):
                    self.out.append(("forkbomb", None))
        for node in nodes:
            if isinstance(node, ast.Call):
                self.call(node)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) < 4096:
                v = node.value
                if _PATHLIKE.search(v) and "\n" not in v:
                    self.out.append(("mention", v))
        return self.out

    def call(self, node: Any) -> None:
        import ast

        fn = self.name_of(node.func)
        last = fn.rsplit(".", 1)[-1]
        args = node.args
        first = args[0] if args else None
        if last in _RMTREE_FUNCS:
            if last == "rmtree" and isinstance(node.func, ast.Attribute) and fn.startswith("Path()"):
                self.out.append(("rmtree", self.path_of(node.func.value)))
            else:
                value = self.const(first) if first is not None else None
                self.out.append(("rmtree", value if isinstance(value, str) else None))
            return
        if last in _SHELL_FUNCS and (fn.startswith(("os.", "subprocess.", "commands.", "pty.", "asyncio."))
                                     or fn in ("system", "popen", "run", "call", "Popen", "check_output",
                                               "check_call", "getoutput")
                                     or "create_subprocess" in fn):
            self.shell_arg(first)
            return
        if "create_subprocess_shell" in fn or "create_subprocess_exec" in fn:
            if "exec" in fn:
                items = [self.const(a) for a in args]
                if items and all(isinstance(x, str) for x in items):
                    self.out.append(("shell", argv_to_shell([str(x) for x in items])))
                    return
            self.shell_arg(first)
            return
        if last in _EXEC_FUNCS and fn.startswith("os."):
            items = [self.const(a) for a in args]
            flat: list[str] = []
            for x in items[1:]:
                if isinstance(x, list):
                    flat.extend(x)
                elif isinstance(x, str):
                    flat.append(x)
            if flat:
                self.out.append(("shell", argv_to_shell(flat)))
            return
        if fn in ("exec", "eval", "compile", "builtins.exec"):
            if first is not None and self.contains_download(first):
                self.out.append(("exec-download", None))
                return
            value = self.const(first) if first is not None else None
            if isinstance(value, bytes):
                value = value.decode("utf-8", "replace")
            if isinstance(value, str) and self.depth < 8:
                self.out.extend(_Py(value, self.depth + 1).run())
            return
        if last in ("open", "read_text", "read_bytes", "write_text", "write_bytes", "copy", "copy2", "copyfile",
                    "copytree", "make_archive", "move", "load", "loads"):
            target: Any = first
            if last in ("read_text", "read_bytes", "write_text", "write_bytes") and isinstance(node.func,
                                                                                                ast.Attribute):
                target = node.func.value
            path = self.path_of(target) if target is not None else None
            if path:
                mode = self.const(args[1]) if len(args) > 1 else None
                for kw in node.keywords:
                    if kw.arg == "mode":
                        mode = self.const(kw.value)
                writes = last.startswith("write") or (isinstance(mode, str) and any(c in mode for c in "wax+"))
                self.out.append(("write" if writes else "read", path))
            return

    def contains_download(self, node: Any) -> bool:
        import ast

        for sub in ast.walk(node):
            if isinstance(sub, ast.Call):
                name = self.name_of(sub.func)
                if name.rsplit(".", 1)[-1] in _DOWNLOAD and ("url" in name or "requests" in name
                                                             or "http" in name):
                    return True
        return False

    def shell_arg(self, node: Any) -> None:
        if node is None:
            return
        value = self.const(node)
        if isinstance(value, str):
            self.out.append(("shell", value))
        elif isinstance(value, list):
            self.out.append(("shell", argv_to_shell(value)))
        else:
            self.out.append(("problem", "runs a command built from unknown values"))


# ------------------------------------------------------------------------------------------ other languages

_STR = re.compile(r"""'((?:[^'\\\n]|\\.)*)'|"((?:[^"\\\n]|\\.)*)"|`((?:[^`\\]|\\.)*)`""")
_NODE_SHELL = re.compile(r"\b(?:exec|execSync|spawn|spawnSync|execFile|execFileSync|fork)\s*\(\s*")
_NODE_RM = re.compile(r"\b(?:rmSync|rmdirSync|rm|rmdir)\s*\(\s*([^,)]*)(,[^)]*recursive\s*:\s*(?:true|1|!0))")
_NODE_RIMRAF = re.compile(r"\b(?:rimraf|removeSync|emptyDirSync|remove)\s*(?:\.sync)?\s*\(\s*([^,)]*)")
_NODE_READ = re.compile(r"\b(?:readFileSync|readFile|createReadStream|copyFileSync|copyFile|cpSync|open|openSync)"
                        r"\s*\(\s*([^,)]*)")
_PERL_SHELL = re.compile(r"\b(?:system|exec)\s*\(?\s*|\bqx\s*|`")
_PERL_RM = re.compile(r"\b(?:rmtree|remove_tree)\s*\(?\s*([^,);]*)")
_PERL_READ = re.compile(r"\bopen\s*\(?\s*(?:my\s+)?[\$\w]*\s*,\s*(?:['\"][<+]*['\"]\s*,\s*)?([^,);]*)")
_RUBY_SHELL = re.compile(r"\b(?:system|exec|spawn|IO\.popen|Open3\.\w+|%x)\s*\(?\s*|`")
_RUBY_RM = re.compile(r"\bFileUtils\.(?:rm_rf|rm_r|remove_dir|remove_entry|remove_entry_secure|rmtree|"
                      r"rm_f)\s*\(?\s*([^,);]*)")
_RUBY_READ = re.compile(r"\b(?:File\.(?:read|open|readlines|binread|foreach)|IO\.read|FileUtils\.(?:cp|copy))"
                        r"\s*\(?\s*([^,);]*)")
_PERL_FORK = re.compile(r"\bfork\b[^;]*\bwhile\b[^;]*\bfork\b|\bwhile\s*\(?[^)]*\)?\s*\{?\s*fork\b|"
                        r"\bfork\s+while\b|\bloop\s*\{\s*fork\b|\bwhile\s*\(\s*1\s*\)\s*\{\s*fork")


def _literal(text: str) -> str | None:
    text = text.strip()
    m = _STR.fullmatch(text)
    if not m:
        return None
    value = next(g for g in m.groups() if g is not None)
    if m.group(3) is not None and "${" in value:
        return None
    if m.group(2) is not None and ("$" in value or "#{" in value) and not value.startswith("$HOME"):
        pass
    return value.replace("\\'", "'").replace('\\"', '"').replace("\\\\", "\\")


def _strings_after(code: str, start: int) -> list[str]:
    """String literals of the call starting at `start` (first argument; an array of literals too)."""
    rest = code[start:start + 4000]
    if rest.startswith("["):
        end = rest.find("]")
        items = [_literal(x) for x in _split_top(rest[1:end if end > 0 else len(rest)])]
        return [x for x in items if x is not None]
    m = _STR.match(rest)
    if not m:
        return []
    out = [next(g for g in m.groups() if g is not None)]
    after = rest[m.end():].lstrip()
    if after.startswith(","):
        tail = after[1:].lstrip()
        if tail.startswith("["):
            end = tail.find("]")
            out.extend(x for x in (_literal(y) for y in _split_top(tail[1:end if end > 0 else len(tail)]))
                       if x is not None)
        else:
            for piece in _split_top(tail.split(")", 1)[0]):
                lit = _literal(piece)
                if lit is None:
                    break
                out.append(lit)
    return out


def _split_top(text: str) -> list[str]:
    return [x for x in (p.strip() for p in text.split(",")) if x]


def _heuristic(lang: str, code: str) -> list[Finding]:
    out: list[Finding] = []
    if lang == "node":
        shell_re, rm_re, read_re = _NODE_SHELL, _NODE_RM, _NODE_READ
    elif lang == "perl":
        shell_re, rm_re, read_re = _PERL_SHELL, _PERL_RM, _PERL_READ
    elif lang == "ruby":
        shell_re, rm_re, read_re = _RUBY_SHELL, _RUBY_RM, _RUBY_READ
    else:  # php, lua, …: shell calls only
        shell_re, rm_re, read_re = re.compile(r"\b(?:system|exec|shell_exec|passthru|popen|os\.execute)\s*\(\s*"), \
            None, None
    for m in shell_re.finditer(code):
        if m.group().endswith("`") or m.group().startswith("qx"):
            end_char = {"(": ")", "{": "}", "[": "]", "<": ">"}
            j = m.end()
            if m.group() == "`":
                k = code.find("`", j)
                if k > 0:
                    out.append(("shell", code[j:k]))
                continue
            if j < len(code):
                opener = code[j]
                closer = end_char.get(opener, opener)
                k = code.find(closer, j + 1)
                if k > 0:
                    out.append(("shell", code[j + 1:k]))
            continue
        items = _strings_after(code, m.end())
        if not items:
            if re.compile(r"\s*[\w$@]").match(code, m.end()):
                out.append(("problem", "runs a command built from unknown values"))
            continue
        if len(items) == 1:
            out.append(("shell", items[0]))
        else:
            out.append(("shell", argv_to_shell(items)))
    if rm_re is not None:
        for m in rm_re.finditer(code):
            lit = _literal(m.group(1))
            out.append(("rmtree", lit))
    if lang == "node":
        for m in _NODE_RIMRAF.finditer(code):
            out.append(("rmtree", _literal(m.group(1))))
    if read_re is not None:
        for m in read_re.finditer(code):
            lit = _literal(m.group(1))
            if lit:
                out.append(("read", lit.lstrip("<>+ ")))
    if lang in ("perl", "ruby") and _PERL_FORK.search(code):
        out.append(("forkbomb", None))
    if lang == "node" and re.compile(r"while\s*\(\s*(?:true|1)\s*\)\s*\{?[^}]*\bfork\s*\(").search(code):
        out.append(("forkbomb", None))
    for m in _STR.finditer(code[:200_000]):
        value = next(g for g in m.groups() if g is not None)
        if len(value) < 4096 and _PATHLIKE.search(value):
            out.append(("mention", value))
    if re.compile(r"\b(?:eval|exec|Function)\s*\(.*\b(?:fetch|https?\.get|request|urlopen|LWP|get\s*\(\s*['\"]"
                  r"https?:|open-uri|Net::HTTP|URI\.open)", re.S).search(code[:200_000]):
        out.append(("exec-download", None))
    if lang == "perl" and re.compile(r"\beval\b.*\b(?:get|LWP::Simple|HTTP::Tiny)").search(code[:200_000]):
        out.append(("exec-download", None))
    return out


def analyse(lang: str, code: str, depth: int = 0) -> list[Finding]:
    if lang == "python":
        return _Py(code, depth).run()
    return _heuristic(lang, code)
