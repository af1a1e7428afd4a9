"""Gemini importer for Google Takeout: My Activity -> Gemini Apps, JSON format.

Real file: `Takeout/My Activity/Gemini Apps/MyActivity.json` (also `My Activity.json`, depending on locale and
export date), alone, inside the Takeout zip, or under a folder. A JSON array, newest first, one entry per activity.
Entries titled "Prompted <prompt>" are prompts; their response is `safeHtmlItem[0].html` as plain text, and any
further `safeHtmlItem` is a regenerated draft kept as an "alternate:<n>" message (the export does not say which
draft the user kept). Other entries ("Gave feedback: Good response") are not messages; feedback is noted in the
meta of the response it follows.

The export has no conversation ids, so LORE cuts sessions itself: entries sorted by time, and a new session starts
when the gap to the previous prompt exceeds LORE_GEMINI_GAP_MINUTES (environment variable, default 30 minutes).
Session and message ids come from the first prompt's time and a hash of its text, so a later, larger export
re-imports into the same sessions. No models or token counts are exported: `calls` stays empty.
"""

from __future__ import annotations

import hashlib
import os
import re
import zipfile
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from typing import Any

from ..model import Message, Session, SourceFile
from . import Importer, ImportFailed, Parsed, Report, Unit
from .exports import load_json_array, reading, source_file

PLATFORM = "gemini"
VERSION = "1"
GAP_MINUTES = 30.0  # default session gap; LORE_GEMINI_GAP_MINUTES overrides it
GAP_ENV = "LORE_GEMINI_GAP_MINUTES"
PROMPT_PREFIX = "Prompted "
FEEDBACK_PREFIX = "Gave feedback: "
REDOWNLOAD = "re-download the Takeout export (My Activity > Gemini Apps, JSON format)"
TITLE_CHARS = 80
_GEM = re.compile(r"^(?P<name>.+?) was used in this chat", re.IGNORECASE)
_IMAGE_EXT = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".heic", ".bmp")


# --- discover ---------------------------------------------------------------------------------------------------


def _is_gemini_activity(parts: tuple[str, ...]) -> bool:
    """`.../My Activity/Gemini Apps/<any>.json`, whatever the file is called this year."""
    return len(parts) >= 3 and parts[-3] == "My Activity" and parts[-2] == "Gemini Apps" and _is_json(parts[-1])


def _is_any_activity(parts: tuple[str, ...]) -> bool:
    return "activity" in parts[-1].lower() and _is_json(parts[-1])


def _is_json(name: str) -> bool:
    return name.lower().endswith(".json")


def _pick(names: list[str]) -> list[str]:
    """The Gemini Apps activity files; any *Activity*.json only when that folder is absent."""
    parts = {n: PurePosixPath(n).parts for n in names}
    return [n for n in names if _is_gemini_activity(parts[n])] or [n for n in names if _is_any_activity(parts[n])]


def discover(path: Path) -> list[Unit]:
    """A MyActivity.json file, a Takeout zip, or a folder holding either (searched recursively)."""
    if path.is_file():
        return [Unit(PLATFORM, [path])]
    if not path.is_dir():
        return []
    files = {p.relative_to(path).as_posix(): p for p in path.rglob("*.json") if p.is_file()}
    found = [files[n] for n in sorted(_pick(list(files)))]
    # In a folder, only zips that really hold Gemini activity count: a Downloads folder has many other zips.
    found += sorted(p for p in path.rglob("*.zip") if p.is_file() and _zip_members(p))
    return [Unit(PLATFORM, [p]) for p in found]


def _zip_members(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as zf:
            return _pick([n for n in zf.namelist() if not n.endswith("/")])
    except (zipfile.BadZipFile, OSError):
        return []


# --- reading ----------------------------------------------------------------------------------------------------


def _read_sources(path: Path) -> list[tuple[str, bytes]]:
    """(name for the report, bytes) of each activity file: the file itself, or the matching files in a zip."""
    with reading(path, REDOWNLOAD):
        if not zipfile.is_zipfile(path):
            if path.suffix.lower() == ".zip":
                raise ImportFailed(f"{path} is not a readable zip (corrupt or incomplete download); {REDOWNLOAD}.")
            if path.suffix.lower() in (".html", ".htm"):
                raise ImportFailed(f"{path} is the HTML form of My Activity, which LORE does not read; {REDOWNLOAD}.")
            return [(str(path), path.read_bytes())]
        with zipfile.ZipFile(path) as zf:
            members = _pick([n for n in zf.namelist() if not n.endswith("/")])
            if not members:
                raise ImportFailed(f"{path} holds no My Activity/Gemini Apps JSON file; {REDOWNLOAD}.")
            return [(f"{path}!{m}", zf.read(m)) for m in members]


def gap_minutes() -> float:
    raw = os.environ.get(GAP_ENV, "").strip()
    if not raw:
        return GAP_MINUTES
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise ImportFailed(f"{GAP_ENV}={raw!r} is not a positive number of minutes; set it to e.g. 30 or unset it.")
    return value


# --- HTML -> text -----------------------------------------------------------------------------------------------


class _TextParser(HTMLParser):
    """Plain text from the response HTML: paragraphs and headings as blank lines, list items as "- ", <pre> kept."""

    _PARAGRAPH = frozenset({"p", "div", "ul", "ol", "pre", "blockquote", "table", "h1", "h2", "h3", "h4", "h5", "h6"})
    _LINE = frozenset({"br", "li", "tr", "hr"})
    _SKIP = frozenset({"script", "style"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)  # entities arrive already unescaped
        self.out: list[str] = []
        self.pre = 0
        self.skip = 0
        self.lists: list[int] = []  # one counter per open list; -1 for <ul>

    def _ends_with(self) -> str:
        return "".join(self.out[-2:])[-2:] if self.out else ""

    def _newlines(self, n: int) -> None:
        if not self.out:
            return
        while self.out and self.out[-1].endswith(" "):  # no trailing spaces before a break
            self.out[-1] = self.out[-1].rstrip(" ")
            if not self.out[-1]:
                self.out.pop()
        tail = self._ends_with()
        have = len(tail) - len(tail.rstrip("\n"))
        if have < n:
            self.out.append("\n" * (n - have))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self.skip += 1
        elif tag in self._PARAGRAPH:
            self._newlines(2)
            if tag == "pre":
                self.pre += 1
            if tag in ("ul", "ol"):
                self.lists.append(0 if tag == "ol" else -1)
        elif tag == "li":
            self._newlines(1)
            self._list_marker()
        elif tag in self._LINE:
            self._newlines(1)

    def _list_marker(self) -> None:
        if self.lists and self.lists[-1] >= 0:
            self.lists[-1] += 1
            self.out.append(f"{self.lists[-1]}. ")
        else:
            self.out.append("- ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in self._PARAGRAPH:
            if tag == "pre" and self.pre:
                self.pre -= 1
            if tag in ("ul", "ol") and self.lists:
                self.lists.pop()
            self._newlines(2)
        elif tag in ("li", "tr"):
            self._newlines(1)

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if self.pre:
            self.out.append(data)
            return
        text = re.sub(r"\s+", " ", data)
        if not self.out or self._ends_with().endswith(("\n", " ")):  # no leading space on a line or twice
            text = text.lstrip(" ")
        if text:
            self.out.append(text)


def html_to_text(html: str) -> str:
    parser = _TextParser()
    parser.feed(html)
    parser.close()
    return "".join(parser.out).strip()


# --- entries ----------------------------------------------------------------------------------------------------


@dataclass
class _Prompt:
    index: int  # position in the export file, for the report
    time: datetime
    text: str
    entry: dict[str, Any]
    feedback: list[str] = field(default_factory=list)


class _Malformed(ValueError):
    """One entry is not shaped like a My Activity entry; it is skipped, the others import."""


def _entry_time(entry: Any) -> datetime:
    if not isinstance(entry, dict):
        raise _Malformed(f"expected an object, got {type(entry).__name__}")
    raw = entry.get("time")
    if not isinstance(raw, str):
        raise _Malformed("no time")
    try:
        t = datetime.fromisoformat(raw)
    except ValueError as e:
        raise _Malformed(f"unreadable time {raw!r}") from e
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _split_entries(name: str, data: list[Any], report: Report) -> tuple[list[_Prompt], list[tuple[datetime, str]]]:
    """Prompts, and feedback entries as (time, what); malformed entries go to the report."""
    prompts: list[_Prompt] = []
    feedback: list[tuple[datetime, str]] = []
    for index, entry in enumerate(data):
        try:
            t = _entry_time(entry)
            title = entry.get("title")
            if not isinstance(title, str):
                raise _Malformed("no title")
        except _Malformed as e:
            report.bad(name, index, f"entry skipped: {e}")
            continue
        if title.startswith(PROMPT_PREFIX):
            prompts.append(_Prompt(index, t, title[len(PROMPT_PREFIX):], entry))
        elif title.startswith(FEEDBACK_PREFIX):
            feedback.append((t, title[len(FEEDBACK_PREFIX):]))
    return prompts, feedback


def _attach_feedback(prompts: list[_Prompt], feedback: list[tuple[datetime, str]]) -> None:
    """Feedback belongs to the latest prompt before it (prompts sorted by time)."""
    times = [p.time for p in prompts]
    for t, what in feedback:
        i = bisect_right(times, t) - 1
        if i >= 0:
            prompts[i].feedback.append(what)


def sessionise(prompts: list[_Prompt], gap: float) -> list[list[_Prompt]]:
    """Consecutive prompts (sorted by time) more than `gap` minutes apart start a new session."""
    groups: list[list[_Prompt]] = []
    limit = timedelta(minutes=gap)
    for p in prompts:
        if groups and p.time - groups[-1][-1].time <= limit:
            groups[-1].append(p)
        else:
            groups.append([p])
    return groups


# --- entries -> messages ----------------------------------------------------------------------------------------


def iso(t: datetime) -> str:
    return f"{t:%Y-%m-%dT%H:%M:%S}.{t.microsecond // 1000:03d}Z"


def stable_id(t: datetime, text: str) -> str:
    """Time plus text hash: the same prompt gets the same id in every later export."""
    return f"{t:%Y%m%dT%H%M%S}{t.microsecond // 1000:03d}Z-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def _subtitles(entry: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in entry.get("subtitles") or [] if isinstance(s, dict)]


def gems(entry: dict[str, Any]) -> list[str]:
    out = []
    for s in _subtitles(entry):
        m = _GEM.match(str(s.get("name") or ""))
        if m:
            out.append(m["name"].strip())
    return out


def _attachments(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """`imageFile`/`attachedFiles`, named from the "-  name.png" subtitle that links the same file."""
    names = {str(s["url"]): str(s.get("name") or "").lstrip("- ").strip() or None
             for s in _subtitles(entry) if isinstance(s.get("url"), str) and "://" not in s["url"]}
    refs: list[str] = []
    for key in ("imageFile", "attachedFiles", "attachments"):
        value = entry.get(key)
        for ref in value if isinstance(value, list) else [value]:
            if isinstance(ref, str) and ref and ref not in refs:
                refs.append(ref)
    refs += [r for r in names if r not in refs]  # files linked only from a subtitle
    return [{"type": "attachment", "ref": r, "name": names.get(r),
             "kind": "image" if r.lower().endswith(_IMAGE_EXT) or r == entry.get("imageFile") else "file"}
            for r in refs]


def _drafts(entry: dict[str, Any]) -> list[tuple[str, str]]:
    """(html, plain text) of each response draft, in export order."""
    items = entry.get("safeHtmlItem") or []
    html = [str(i.get("html") or "") for i in items if isinstance(i, dict)]
    return [(h, html_to_text(h)) for h in html]


def _prompt_messages(p: _Prompt, parent: str | None, alt: int) -> tuple[list[Message], int]:
    """The prompt, its response (first draft) and the other drafts as alternates; returns the next alternate n."""
    pid = stable_id(p.time, p.text)
    when = iso(p.time)
    content: list[dict[str, Any]] = [{"type": "text", "text": p.text}] if p.text else []
    out = [Message(id=pid, role="user", content=content + _attachments(p.entry), time=when, parent=parent)]
    used: set[str] = set()
    for i, (html, text) in enumerate(_drafts(p.entry)):
        if not text:
            continue
        # Hash the HTML, not our text: a better converter later must not change the ids.
        mid = f"{pid}-{hashlib.sha256(html.encode()).hexdigest()[:8]}"
        mid = mid if mid not in used else f"{mid}-{i}"  # two identical drafts still need two ids
        used.add(mid)
        thread = "main"
        if len(out) > 1:  # the first non-empty draft is the response, the rest alternates
            thread, alt = f"alternate:{alt}", alt + 1
        out.append(Message(id=mid, role="assistant", content=[{"type": "text", "text": text}], time=when,
                           thread=thread, parent=pid))
    if p.feedback:  # on the response when there is one: that is what the feedback was about
        main = [m for m in out if m.thread == "main"]
        main[-1].meta["feedback"] = list(p.feedback)
    return out, alt


def _session(group: list[_Prompt], sources: list[SourceFile]) -> Session:
    messages: list[Message] = []
    parent: str | None = None
    alt = 1
    for p in group:
        msgs, alt = _prompt_messages(p, parent, alt)
        messages += msgs
        parent = [m for m in msgs if m.thread == "main"][-1].id
    first = group[0]
    title = first.text if len(first.text) <= TITLE_CHARS else first.text[: TITLE_CHARS - 1].rstrip() + "…"
    session = Session(platform=PLATFORM, native_id=stable_id(first.time, first.text), messages=messages,
                      title=title or None, started=iso(first.time), ended=iso(group[-1].time),
                      sources=sources, importer_version=VERSION)
    used_gems = list(dict.fromkeys(g for p in group for g in gems(p.entry)))
    if used_gems:
        session.extra["gems"] = used_gems
    return session


# --- parse ------------------------------------------------------------------------------------------------------


def parse(unit: Unit, report: Report, offsets: dict[str, int]) -> Parsed:
    """All prompts in the unit's activity file(s), cut into sessions by the gap (LORE_GEMINI_GAP_MINUTES)."""
    gap = gap_minutes()
    path = unit.paths[0]
    prompts: list[_Prompt] = []
    feedback: list[tuple[datetime, str]] = []
    for name, raw in _read_sources(path):
        entries = load_json_array(name, raw, report, items="activity entries", redownload=REDOWNLOAD)
        p, f = _split_entries(name, entries, report)
        prompts += p
        feedback += f
    prompts.sort(key=lambda p: (p.time, -p.index))  # the file is newest first; equal times keep their order
    _attach_feedback(prompts, feedback)
    sources = [source_file(path)]
    return Parsed(sessions=[_session(g, sources) for g in sessionise(prompts, gap)])


IMPORTER = Importer(platform=PLATFORM, version=VERSION, discover=discover, parse=parse)
