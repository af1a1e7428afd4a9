"""Which client a session belongs to, from the clients file `$LORE_ROOT/clients.yaml`:

    default: internal                 # sessions no rule claims
    clients:
      acme:
        paths: [~/projects/acme_api.v2, /srv/acme]           # the session's cwd is one of these or below
        remotes: ["git@github.com:acme/*", "*acme_api.git"]  # the session's git remote matches (fnmatch)
        access_level: confidential                            # copied into each session's security fields
        data_classification: client-confidential

The longest matching path wins; then the first matching remote; then the default. An explicit `--client` (for
exports, which carry no cwd) overrides everything. Client names are folder names: lower-case letters, digits,
`-` and `_`.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import yamlio

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
DEFAULT_CLIENT = "internal"
FILE_NAME = "clients.yaml"


class ClientsError(Exception):
    """The clients file is wrong; the message names the file and the problem."""


@dataclass(frozen=True)
class Client:
    name: str
    paths: tuple[str, ...] = ()
    remotes: tuple[str, ...] = ()
    access_level: str = "internal"
    data_classification: str = "internal"


@dataclass
class Clients:
    default: str = DEFAULT_CLIENT
    clients: dict[str, Client] = field(default_factory=dict)

    def names(self) -> list[str]:
        return sorted({self.default, *self.clients})

    def get(self, name: str) -> Client:
        return self.clients.get(name) or Client(name)

    def resolve(self, cwd: str | None = None, remote: str | None = None, explicit: str | None = None) -> str:
        if explicit:
            return check_name(explicit)
        if cwd:
            best, best_len = None, -1
            norm = _norm(cwd)
            for c in self.clients.values():
                for p in c.paths:
                    if (norm == p or norm.startswith(p.rstrip("/") + "/")) and len(p) > best_len:
                        best, best_len = c.name, len(p)
            if best:
                return best
        if remote:
            for c in self.clients.values():
                if any(fnmatch.fnmatchcase(remote, pat) for pat in c.remotes):
                    return c.name
        return self.default


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise ClientsError(f"client name {name!r}: use lower-case letters, digits, '-' and '_' (it is a folder name)")
    return name


def _norm(p: str) -> str:
    return os.path.normpath(os.path.expanduser(p))


def load_clients(root: Path) -> Clients:
    """The rules in `root/clients.yaml`; no file means everything goes to `internal`."""
    path = root / FILE_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Clients()
    except OSError as exc:
        raise ClientsError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        data = yamlio.load(text) or {}
    except Exception as exc:  # libyaml's errors carry a position: pass it on
        raise ClientsError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ClientsError(f"{path}: expected a mapping with `default` and `clients`")
    return _parse(path, data)


def _parse(path: Path, data: dict[str, Any]) -> Clients:
    default = check_name(str(data.get("default") or DEFAULT_CLIENT))
    raw = data.get("clients") or {}
    if not isinstance(raw, dict):
        raise ClientsError(f"{path}: `clients` must map client names to rules")
    out: dict[str, Client] = {}
    for name, rules in raw.items():
        name = check_name(str(name))
        rules = rules or {}
        if not isinstance(rules, dict):
            raise ClientsError(f"{path}: client {name!r}: expected `paths`, `remotes`, `access_level`, …")
        unknown = set(rules) - {"paths", "remotes", "access_level", "data_classification"}
        if unknown:
            raise ClientsError(f"{path}: client {name!r}: unknown key(s) {', '.join(sorted(unknown))}")
        out[name] = Client(name=name, paths=tuple(_norm(str(p)) for p in rules.get("paths") or ()),
                           remotes=tuple(str(r) for r in rules.get("remotes") or ()),
                           access_level=str(rules.get("access_level") or "internal"),
                           data_classification=str(rules.get("data_classification") or "internal"))
    return Clients(default=default, clients=out)
