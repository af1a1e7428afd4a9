"""YAML in and out. Reading uses libyaml (CSafeLoader). Writing uses a small emitter of our own for the JSON-like
documents LORE writes (dicts, lists, str, int, float, bool, None): PyYAML's representer walks every node in
Python and made dumping the slowest step of an import (~8 MB/s); this one runs at several times that.

Output rules, chosen so that libyaml reads back exactly what was written (tests round-trip awkward strings):
  * multi-line text as literal blocks (`|`, `|-`, `|+`, with an indentation digit when the text starts with a
    space), readable in `git diff`, unless it holds characters a block cannot carry (then a quoted scalar);
  * other strings plain when they are unmistakably strings (start with a letter, only safe characters, not a YAML
    1.1 boolean or null word), else double-quoted in JSON syntax, which YAML's double-quoted style accepts;
  * numbers, booleans and null in their JSON spelling; empty containers as `{}` and `[]`.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
import yaml

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_PLAIN_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_./@+-]*")
_YAML11_WORDS = frozenset(["y", "n", "yes", "no", "on", "off", "true", "false", "null"])
# Characters a literal block cannot hold as themselves: other line breaks, C0/C1 controls except tab and \n,
# DEL, BOM, surrogates, and the non-characters U+FFFE/U+FFFF.
_NOT_IN_BLOCK_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff\ud800-\udfff\ufffe\uffff]")
_INDENT = "  "


# What YAML does not allow unescaped inside double quotes but JSON does: DEL, C1 controls, NEL and the Unicode
# line and paragraph separators (YAML reads them as line breaks), BOM and the two non-characters.
_YAML_UNPRINTABLE_RE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")


def _escape(m: re.Match[str]) -> str:
    return f"\\u{ord(m.group()):04x}"


def _quoted(s: str) -> str:
    try:
        out = orjson.dumps(s).decode("utf-8")
    except orjson.JSONEncodeError:  # a lone surrogate (undecodable bytes kept by surrogateescape)
        out = orjson.dumps(s.encode("utf-8", "replace").decode("utf-8")).decode("utf-8")
    return _YAML_UNPRINTABLE_RE.sub(_escape, out) if _YAML_UNPRINTABLE_RE.search(out) else out


def _scalar(v: Any) -> str:
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            return ".nan" if v != v else (".inf" if v > 0 else "-.inf")
        r = repr(v)
        if "e" in r and "." not in r.split("e")[0]:  # YAML 1.1 floats need a dot before the exponent
            mant, exp = r.split("e")
            r = f"{mant}.0e{exp if exp[0] in '+-' else '+' + exp}"
        return r
    s = str(v)
    if _PLAIN_RE.fullmatch(s) and s.lower() not in _YAML11_WORDS:
        return s
    return _quoted(s)


def _block(s: str, indent: str) -> str | None:
    """`s` as a literal block scalar (header plus indented lines), or None when it must be quoted."""
    if "\n" not in s or _NOT_IN_BLOCK_RE.search(s) or s.strip(" \n") == "":
        return None
    if s.endswith("\n\n") or s == "\n":
        chomp = "+"
    elif s.endswith("\n"):
        chomp = ""
    else:
        chomp = "-"
    body = s[:-1] if s.endswith("\n") else s
    lines = body.split("\n")
    # A first line starting with a space (or a blank first line followed by indented text) needs an explicit
    # indentation indicator; a trailing-space-only last line is fine in a literal block.
    first = next((ln for ln in lines if ln.strip(" ") != ""), "")
    if first.startswith("\t"):  # libyaml cannot find the indentation under a leading tab
        return None
    lead = lines[0].startswith(" ") or (first.startswith(" ") and lines[0] == "") or \
        (lines[0].strip(" ") == "" and lines[0] != "")
    header = "|" + (str(len(_INDENT)) if lead else "") + chomp
    if chomp == "+":  # keep every trailing newline: the body's last lines are empty ones
        lines = s.split("\n")[:-1]
    return header + "\n" + "\n".join(indent + ln if ln else "" for ln in lines)


def _emit(v: Any, indent: str, out: list[str]) -> None:
    """Append the lines for value `v` nested at `indent` (a mapping or sequence); scalars are handled by callers."""
    if isinstance(v, dict):
        for k, x in v.items():
            key = _scalar(str(k)) if not isinstance(k, str) or not _PLAIN_RE.fullmatch(k) else k
            if k == "" or (isinstance(k, str) and k.lower() in _YAML11_WORDS):
                key = _quoted(str(k))
            _item(f"{indent}{key}:", x, indent, out, in_list=False)
    else:
        for x in v:
            _item(f"{indent}-", x, indent, out, in_list=True)


def _item(head: str, x: Any, indent: str, out: list[str], in_list: bool) -> None:
    child = indent + _INDENT
    if isinstance(x, dict):
        if not x:
            out.append(f"{head} {{}}")
        elif in_list:  # "- key: value" with the rest of the mapping aligned under the first key
            sub: list[str] = []
            _emit(x, child, sub)
            out.append(f"{head} {sub[0][len(child):]}")
            out.extend(sub[1:])
        else:
            out.append(head)
            _emit(x, child, out)
    elif isinstance(x, list):
        if not x:
            out.append(f"{head} []")
        elif in_list:
            sub = []
            _emit(x, child, sub)
            out.append(f"{head} {sub[0][len(child):]}")
            out.extend(sub[1:])
        else:
            out.append(head)
            _emit(x, child, out)
    elif isinstance(x, str) and "\n" in x:
        block = _block(x, child)
        out.append(f"{head} {block}" if block is not None else f"{head} {_quoted(x)}")
    else:
        out.append(f"{head} {_scalar(x)}")


def dump(data: Any) -> str:
    """A mapping (or sequence) as a YAML document ending in a newline."""
    if not isinstance(data, (dict, list)):
        return _scalar(data) + "\n"
    if not data:
        return "{}\n" if isinstance(data, dict) else "[]\n"
    out: list[str] = []
    _emit(data, "", out)
    return "\n".join(out) + "\n"


def load(text: str | bytes) -> Any:
    return yaml.load(text, Loader=_Loader)
