"""ChatGPT data export importer (`conversations.json`, alone or inside the export zip).

The export is one JSON array of conversations, each a tree of nodes (`mapping`) linked by `parent`/`children`.
What the user sees is the path from `current_node` back to the root: that becomes thread "main". Every other
branch (an answer that was regenerated, a prompt that was edited) is kept, one thread "alternate:<n>" per maximal
chain of nodes off the visible path, numbered from 1 in the order the branches leave the main path.

Skipped: nodes without a message, hidden messages (the empty system prompt, custom instructions), and
`reasoning_recap` ("Thought for 7 seconds"), whose text goes into the next assistant message's meta. A `thoughts`
node becomes a thinking block on the next assistant message of its branch.

The export has no token counts, so `calls` stays empty: unknown, not zero.
"""

from __future__ import annotations

import zipfile
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from ..model import ROLES, Message, Session
from . import Importer, ImportFailed, Parsed, Report, Unit
from .exports import load_json_array, reading, source_file

PLATFORM = "chatgpt"
VERSION = "1"
EXPORT_NAME = "conversations.json"
REDOWNLOAD = "re-download the export from ChatGPT (Settings > Data controls > Export data)"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SPECIAL = ("thoughts", "reasoning_recap")  # folded into the next assistant message, never messages themselves

Node = dict[str, Any]


class _Malformed(ValueError):
    """One conversation is not shaped like the export format; it is skipped, the others import."""


# --- discover ---------------------------------------------------------------------------------------------------


def discover(path: Path) -> list[Unit]:
    """`path` is a conversations.json, an export zip, or a folder holding either (searched recursively)."""
    if path.is_file():
        return [Unit(PLATFORM, [path])]
    if not path.is_dir():
        return []
    found = sorted(p for p in path.rglob(EXPORT_NAME) if p.is_file())
    # In a folder, only zips that really hold an export count: a Downloads folder has many other zips.
    found += sorted(p for p in path.rglob("*.zip") if p.is_file() and _zip_has_export(p))
    return [Unit(PLATFORM, [p]) for p in found]


def _zip_has_export(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as zf:
            return _export_member(zf) is not None
    except (zipfile.BadZipFile, OSError):
        return False


def _export_member(zf: zipfile.ZipFile) -> str | None:
    """conversations.json at the zip's root or one folder down; the shallowest wins."""
    names = [n for n in zf.namelist() if PurePosixPath(n).name == EXPORT_NAME and len(PurePosixPath(n).parts) <= 2]
    return min(names, key=lambda n: len(PurePosixPath(n).parts)) if names else None


# --- reading ----------------------------------------------------------------------------------------------------


def _read_export(path: Path) -> bytes:
    """The bytes of conversations.json, from the file itself or from inside the zip."""
    with reading(path, REDOWNLOAD):
        if not zipfile.is_zipfile(path):
            if path.suffix.lower() == ".zip":
                raise ImportFailed(f"{path} is not a readable zip (corrupt or incomplete download); {REDOWNLOAD}.")
            return path.read_bytes()
        with zipfile.ZipFile(path) as zf:
            member = _export_member(zf)
            if member is None:
                raise ImportFailed(f"{path} has no {EXPORT_NAME} (is it a ChatGPT export?); {REDOWNLOAD}.")
            return zf.read(member)


def iso_time(t: Any) -> str | None:
    """Unix seconds (float) -> ISO 8601 UTC with milliseconds and "Z"; None when absent or not a number."""
    if isinstance(t, bool) or not isinstance(t, int | float):
        return None
    ms = round(t * 1000)  # whole milliseconds first, so 0.125 never prints as .124
    dt = _EPOCH + timedelta(milliseconds=ms)
    return f"{dt:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


# --- parse ------------------------------------------------------------------------------------------------------


def parse(unit: Unit, report: Report, offsets: dict[str, int]) -> Parsed:
    """Every conversation in the export; a malformed one is recorded in `report` (index as line) and skipped."""
    path = unit.paths[0]
    data = load_json_array(f"{path}: {EXPORT_NAME}", _read_export(path), report, items="conversations",
                           redownload=REDOWNLOAD)
    source = source_file(path)
    sessions: list[Session] = []
    for index, conv in enumerate(data):
        try:
            session = parse_conversation(conv)
        except (_Malformed, TypeError, AttributeError, KeyError, ValueError) as e:
            report.bad(path, index, f"conversation skipped: {e}")
            continue
        session.sources = [source]
        sessions.append(session)
    return Parsed(sessions=sessions)


def parse_conversation(conv: Any) -> Session:
    if not isinstance(conv, dict):
        raise _Malformed(f"expected an object, got {type(conv).__name__}")
    native_id = conv.get("conversation_id") or conv.get("id")
    if not isinstance(native_id, str) or not native_id:
        raise _Malformed("no conversation id")
    mapping = _mapping(conv.get("mapping"))
    tree = _Tree(mapping)
    main = tree.path_to(_current_node(conv, mapping))
    chains = tree.chains_off(main)
    shown = {nid for nid in mapping if _is_shown(mapping[nid])}
    thinking_at = _fold_special(tree, shown)
    shown |= thinking_at.keys()  # adds thoughts that reached no answer: they become thinking-only messages
    messages = _thread_messages(tree, main, "main", shown, thinking_at)
    n = 0
    for chain in chains:
        msgs = _thread_messages(tree, chain, f"alternate:{n + 1}", shown, thinking_at)
        if msgs:  # a branch of only skipped nodes takes no number
            n += 1
            messages += msgs
    main_times = [m.time for m in messages if m.thread == "main" and m.time]
    session = Session(platform=PLATFORM, native_id=native_id, messages=messages, importer_version=VERSION,
                      title=conv.get("title") if isinstance(conv.get("title"), str) else None,
                      started=iso_time(conv.get("create_time")) or (main_times[0] if main_times else None),
                      ended=iso_time(conv.get("update_time")) or (main_times[-1] if main_times else None))
    if conv.get("gizmo_id"):  # a custom GPT; worth knowing which one answered
        session.extra["gizmo_id"] = conv["gizmo_id"]
    return session


def _mapping(raw: Any) -> dict[str, Node]:
    if not isinstance(raw, dict) or not raw:
        raise _Malformed("no message tree (mapping)")
    for nid, node in raw.items():
        if not isinstance(node, dict):
            raise _Malformed(f"node {nid!r} is not an object")
        if node.get("message") is not None and not isinstance(node["message"], dict):
            raise _Malformed(f"node {nid!r} has a malformed message")
    return raw


def _current_node(conv: dict[str, Any], mapping: dict[str, Node]) -> str:
    """`current_node`, or (when missing) the most recently written leaf, which is what the app would show."""
    current = conv.get("current_node")
    if isinstance(current, str) and current in mapping:
        return current
    leaves = [nid for nid, node in mapping.items() if not _kids_in(node, mapping)]
    return max(leaves or list(mapping), key=lambda nid: _create_time(mapping[nid]))


def _kids_in(node: Node, mapping: dict[str, Node]) -> list[str]:
    return [c for c in node.get("children") or [] if c in mapping]


def _create_time(node: Node) -> float:
    t = (node.get("message") or {}).get("create_time")
    return float(t) if isinstance(t, int | float) else float("-inf")


@dataclass
class _Tree:
    """Parent/children links; `parent` is the truth (it is what the visible path follows), `children` the order."""

    mapping: dict[str, Node]

    def __post_init__(self) -> None:
        self.kids: dict[str | None, list[str]] = {}
        for nid in self.mapping:
            self.kids.setdefault(self.parent(nid), []).append(nid)
        for pid, kids in self.kids.items():
            listed = self.mapping[pid].get("children") or [] if pid is not None else []
            order = {k: i for i, k in enumerate(listed)}
            kids.sort(key=lambda k: order.get(k, len(order)))

    def parent(self, nid: str) -> str | None:
        p = self.mapping[nid].get("parent")
        return p if isinstance(p, str) and p in self.mapping else None

    def path_to(self, leaf: str) -> list[str]:
        path: list[str] = []
        seen: set[str] = set()
        node: str | None = leaf
        while node is not None and node not in seen:  # a cycle would otherwise loop forever
            seen.add(node)
            path.append(node)
            node = self.parent(node)
        return path[::-1]

    def chains_off(self, main: list[str]) -> list[list[str]]:
        """Every node off `main`, cut into maximal chains (first child continues, later children start new ones)."""
        on_main = set(main)
        starts = deque(k for nid in [None, *main] for k in self.kids.get(nid, []) if k not in on_main)
        chains: list[list[str]] = []
        seen: set[str] = set()
        while starts:
            node: str | None = starts.popleft()
            chain: list[str] = []
            while node is not None and node not in seen:
                seen.add(node)
                chain.append(node)
                kids = self.kids.get(node, [])
                starts.extend(kids[1:])
                node = kids[0] if kids else None
            if chain:
                chains.append(chain)
        return chains


# --- nodes -> messages ------------------------------------------------------------------------------------------


def _content(node: Node) -> dict[str, Any]:
    content = (node.get("message") or {}).get("content")
    return content if isinstance(content, dict) else {}


def _content_type(node: Node) -> str | None:
    return _content(node).get("content_type")


def _is_shown(node: Node) -> bool:
    """A node the ChatGPT app would draw as a message of its own."""
    msg = node.get("message")
    if not msg or _content_type(node) in _SPECIAL:
        return False
    if (msg.get("metadata") or {}).get("is_visually_hidden_from_conversation"):
        return False
    return bool(_blocks(msg))


def _fold_special(tree: _Tree, shown: set[str]) -> dict[str, tuple[list[dict[str, Any]], list[str]]]:
    """For each shown assistant node: thinking blocks and recap texts from the hidden nodes just above it.

    Walking up from the answer (not down from the thoughts) keeps each branch's reasoning with its own answer.
    A `thoughts` node that reaches no answer (generation stopped) is returned under its own id, to become a
    thinking-only message.
    """
    out: dict[str, tuple[list[dict[str, Any]], list[str]]] = {}
    used: set[str] = set()
    for nid in shown:
        if _role(tree.mapping[nid]) != "assistant":
            continue
        thinking: list[dict[str, Any]] = []
        recaps: list[str] = []
        for above in _hidden_above(tree, nid, shown):
            used.add(above)
            if _content_type(tree.mapping[above]) == "thoughts":
                thinking += _thinking_blocks(tree.mapping[above])
            elif _content_type(tree.mapping[above]) == "reasoning_recap":
                recaps.append(str(_content(tree.mapping[above]).get("content") or ""))
        out[nid] = (thinking, recaps)
    for nid, node in tree.mapping.items():
        if _content_type(node) == "thoughts" and nid not in used and _thinking_blocks(node):
            out[nid] = (_thinking_blocks(node), [])
    return out


def _hidden_above(tree: _Tree, nid: str, shown: set[str]) -> list[str]:
    """The not-shown ancestors between `nid` and the nearest shown one, top first."""
    out: list[str] = []
    node = tree.parent(nid)
    while node is not None and node not in shown and node not in out:
        out.append(node)
        node = tree.parent(node)
    return out[::-1]


def _thinking_blocks(node: Node) -> list[dict[str, Any]]:
    thoughts = _content(node).get("thoughts") or []
    texts = [str(t.get("content") or t.get("summary") or "") for t in thoughts if isinstance(t, dict)]
    text = "\n\n".join(t for t in texts if t)
    return [{"type": "thinking", "text": text}] if text else []


def _role(node: Node) -> str:
    role = ((node.get("message") or {}).get("author") or {}).get("role")
    return role if role in ROLES else "assistant"


def _thread_messages(tree: _Tree, nodes: list[str], thread: str, shown: set[str],
                     thinking_at: dict[str, tuple[list[dict[str, Any]], list[str]]]) -> list[Message]:
    out: list[Message] = []
    for nid in nodes:
        if nid not in shown:
            continue
        node = tree.mapping[nid]
        msg = node["message"]
        thinking, recaps = thinking_at.get(nid, ([], []))
        is_thoughts = _content_type(node) == "thoughts"  # a thinking-only message (its answer never came)
        meta: dict[str, Any] = {"reasoning_recap": "\n".join(recaps)} if any(recaps) else {}
        out.append(Message(
            id=nid, role=_role(node), thread=thread,
            content=thinking + ([] if is_thoughts else _blocks(msg)),
            time=iso_time(msg.get("create_time")),
            model=(msg.get("metadata") or {}).get("model_slug") or None,
            parent=_shown_parent(tree, nid, shown), meta=meta))
    return out


def _shown_parent(tree: _Tree, nid: str, shown: set[str]) -> str | None:
    node = tree.parent(nid)
    seen: set[str] = set()
    while node is not None and node not in shown and node not in seen:
        seen.add(node)
        node = tree.parent(node)
    return node if node is not None and node in shown else None


def _blocks(msg: dict[str, Any]) -> list[dict[str, Any]]:
    """Text parts, image pointers and uploaded files; `text`/`result` cover code, tool output and browsing."""
    raw = msg.get("content")
    content: dict[str, Any] = raw if isinstance(raw, dict) else {}
    blocks: list[dict[str, Any]] = []
    for part in content.get("parts") or []:
        if isinstance(part, str) and part.strip():
            blocks.append({"type": "text", "text": part})
        elif isinstance(part, dict) and isinstance(part.get("asset_pointer"), str):
            kind = "image" if part.get("content_type") == "image_asset_pointer" else "file"
            blocks.append({"type": "attachment", "ref": part["asset_pointer"], "name": None, "kind": kind})
    for key in ("text", "result"):
        if isinstance(content.get(key), str) and content[key].strip():
            blocks.append({"type": "text", "text": content[key]})
    return blocks + _uploaded_files(msg, blocks)


def _uploaded_files(msg: dict[str, Any], blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Files (PDFs, spreadsheets) appear only in metadata.attachments; images there are already pointers."""
    refs = " ".join(str(b.get("ref")) for b in blocks if b["type"] == "attachment")
    out: list[dict[str, Any]] = []
    for att in (msg.get("metadata") or {}).get("attachments") or []:
        if not isinstance(att, dict) or not att.get("id") or str(att["id"]) in refs:
            continue
        kind = "image" if str(att.get("mime_type") or "").startswith("image/") else "file"
        out.append({"type": "attachment", "ref": str(att["id"]), "name": att.get("name"), "kind": kind})
    return out


IMPORTER = Importer(platform=PLATFORM, version=VERSION, discover=discover, parse=parse)
