"""Telegram's HTML parse mode, re-implemented so the emulator rejects what Telegram rejects.

The algorithm and the error texts follow tdlib's ``parse_html`` (td/telegram/MessageEntity.cpp), which
is what the Bot API server runs: the same tags, the same lenient attribute syntax, the same
"at byte offset N" (UTF-8 bytes into the *original* text) and entity offsets in UTF-16 code units.

One deliberate difference, switchable with ``strict_ampersand``: tdlib keeps a ``&`` that does not start
one of the four named entities (or a numeric one) as literal text, although the Bot API documentation says
every ``&`` outside an entity must be escaped. By default the emulator reports it, because an unescaped
``&`` almost always means the bot forgot ``html.escape`` on user-provided text - the same text could just
as well have contained ``<`` and failed for real.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "EntityParseError",
    "ParsedText",
    "html_to_plain",
    "parse_entities",
    "parse_html",
    "strip_whitespace",
    "utf16_len",
]

_TAGS = frozenset(
    {"a", "b", "strong", "i", "em", "s", "strike", "del", "u", "ins", "tg-spoiler", "tg-emoji", "span",
     "pre", "code", "blockquote"}
)
_SIMPLE_TYPES = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline", "ins": "underline",
    "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough", "tg-spoiler": "spoiler",
    "span": "spoiler",
}
# tdlib's order for entities sharing a range (MessageEntity::get_type_priority).
_PRIORITY = {
    "blockquote": 0, "expandable_blockquote": 0, "pre": 10, "code": 20, "text_link": 49, "text_mention": 49,
    "bold": 90, "italic": 91, "underline": 92, "strikethrough": 93, "spoiler": 94, "custom_emoji": 99,
}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_SPACES = " \t\r\n\v\f"
# Characters Telegram trims from both ends of a message (tdlib also trims a few invisible ones).
_TRIM = " \t\r\n\v\f\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u200b\u3000"
_LINK_SCHEMES = frozenset({"http", "https", "tg", "ton", "ftp", "tonsite"})
_USER_LINK = re.compile(r"^tg://user\?id=(\d{1,20})$", re.IGNORECASE)


class EntityParseError(ValueError):
    """The text is not valid in the requested parse mode; ``str(err)`` is tdlib's message."""


@dataclass
class ParsedText:
    """Text as Telegram stores it: tags removed, entities unescaped, formatting as Bot API entities."""

    text: str
    entities: list[dict[str, Any]] = field(default_factory=list)


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units - the unit of every Bot API entity offset and length."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8", "surrogatepass"))


def _is_name_token_char(ch: str) -> bool:
    """HTML name tokens: ASCII letters, digits, periods and hyphens."""
    return ch != "" and ((ch.isascii() and ch.isalnum()) or ch in ".-")


def _is_space(ch: str) -> bool:
    # "" stands for tdlib's terminating NUL, which tdlib's is_space() also counts as a space.
    return ch == "" or ch in _SPACES


def _decode_entity(text: str, pos: int) -> tuple[str, int] | None:
    """Decode the character reference starting at ``text[pos] == "&"`` like tdlib does.

    Returns the character and the position after the reference (``;`` is optional), or None when tdlib
    would keep the ``&`` as a literal character.
    """
    n = len(text)
    end = pos + 1
    if end < n and text[end] == "#":
        end += 1
        hexadecimal = end < n and text[end] == "x"  # tdlib accepts only a lowercase x
        if hexadecimal:
            end += 1
        digits = "0123456789abcdefABCDEF" if hexadecimal else "0123456789"
        start = end
        while end < n and text[end] in digits:
            end += 1
        value = int(text[start:end], 16 if hexadecimal else 10) if end > start else 0
        # tdlib gives up on 0, on out-of-range values and on overlong references (its overflow guard).
        if value == 0 or value >= 0x10FFFF or end - pos >= 10:
            return None
        char = chr(value)
    else:
        while end < n and text[end].isascii() and text[end].isalpha():
            end += 1
        named = _NAMED_ENTITIES.get(text[pos + 1:end])
        if named is None:
            return None
        char = named
    if end < n and text[end] == ";":
        end += 1
    return char, end


@dataclass
class _Open:
    tag: str
    argument: str
    utf16_offset: int
    text_index: int  # index into the output parts list, to recover an <a>'s text when href is absent


class _HtmlParser:
    """One pass over the text, mirroring tdlib's state machine (see module docstring)."""

    def __init__(self, text: str, strict_ampersand: bool) -> None:
        self.src = text
        self.strict = strict_ampersand
        self.out: list[str] = []
        self.u16 = 0
        self.entities: list[dict[str, Any]] = []
        self.stack: list[_Open] = []
        self.i = 0

    def ch(self, i: int) -> str:
        return self.src[i] if i < len(self.src) else ""

    def fail(self, message: str) -> EntityParseError:
        return EntityParseError(message)

    def at(self, index: int) -> str:
        return f"at byte offset {_byte_offset(self.src, index)}"

    def emit(self, s: str) -> None:
        self.out.append(s)
        self.u16 += utf16_len(s)

    def run(self) -> ParsedText:
        while self.i < len(self.src):
            c = self.src[self.i]
            if c == "&":
                decoded = _decode_entity(self.src, self.i)
                if decoded is not None:
                    self.emit(decoded[0])
                    self.i = decoded[1]
                    continue
                if self.strict:
                    raise self.fail(f'Unescaped "&" {self.at(self.i)}: write it as &amp; (Telegram would '
                                    "show it literally, but the Bot API documentation requires escaping)")
            if c != "<":
                self.emit(c)
                self.i += 1
                continue
            if self.ch(self.i + 1) == "/":
                self.close_tag()
            else:
                self.open_tag()
        if self.stack:
            raise self.fail(f'Can\'t find end tag corresponding to start tag "{self.stack[-1].tag}"')
        text = "".join(self.out)
        if any("\ud800" <= ch <= "\udfff" for ch in text):
            raise self.fail("Text contains invalid Unicode characters after decoding HTML entities, check "
                            "for unmatched surrogate code units")
        for entity in self.entities:
            if entity["type"] == "code":
                entity.pop("language", None)
        self.entities.sort(key=lambda e: (e["offset"], -e["length"], _PRIORITY.get(e["type"], 50)))
        return ParsedText(text, self.entities)

    def open_tag(self) -> None:
        begin = self.i
        i = begin + 1
        while not _is_space(self.ch(i)) and self.ch(i) != ">":
            i += 1
        if self.ch(i) == "":
            raise self.fail(f"Unclosed start tag {self.at(begin)}")
        tag = self.src[begin + 1:i].lower()
        if tag not in _TAGS:
            raise self.fail(f'Unsupported start tag "{tag}" {self.at(begin)}')
        argument = ""
        while self.ch(i) != ">":
            i, name, value = self.attribute(tag, begin, i)
            if name is None:
                break
            argument = _tag_argument(tag, name, value, argument)
        if tag == "span" and argument != "spoiler":
            raise self.fail(f'Tag "span" must have class "tg-spoiler" {self.at(begin)}')
        self.stack.append(_Open(tag, argument, self.u16, len(self.out)))
        self.i = i + 1

    def attribute(self, tag: str, begin: int, i: int) -> tuple[int, str | None, str | None]:
        """Parse one ``name[=value]`` at ``i``; returns (new position, name or None at '>', value)."""
        while self.ch(i) != "" and _is_space(self.ch(i)):
            i += 1
        if self.ch(i) == ">":
            return i, None, None
        name_begin = i
        while not _is_space(self.ch(i)) and self.ch(i) not in ("=", ">"):
            i += 1
        name = self.src[name_begin:i]
        if not name:
            raise self.fail(f'Empty attribute name in the tag "{tag}" {self.at(begin)}')
        while self.ch(i) != "" and _is_space(self.ch(i)):
            i += 1
        if self.ch(i) != "=":
            if self.ch(i) == "":
                raise self.fail(f"Unclosed start tag {self.at(begin)}")
            return i, name, None  # a value-less attribute such as <blockquote expandable>
        i += 1
        while self.ch(i) != "" and _is_space(self.ch(i)):
            i += 1
        if self.ch(i) == "":
            raise self.fail(f'Unclosed start tag "{tag}" {self.at(begin)}')
        if self.ch(i) not in ("'", '"'):
            token_begin = i
            while _is_name_token_char(self.ch(i)):
                i += 1
            value = self.src[token_begin:i].lower()
            if not _is_space(self.ch(i)) and self.ch(i) != ">":
                raise self.fail(f"Unexpected end of name token {self.at(token_begin)}")
        else:
            i, value = self.quoted(i)
        if self.ch(i) == "":
            raise self.fail(f"Unclosed start tag {self.at(begin)}")
        return i, name, value

    def quoted(self, i: int) -> tuple[int, str]:
        quote = self.ch(i)
        i += 1
        parts: list[str] = []
        while self.ch(i) not in (quote, ""):
            if self.ch(i) == "&":
                decoded = _decode_entity(self.src, i)
                if decoded is not None:
                    parts.append(decoded[0])
                    i = decoded[1]
                    continue
            parts.append(self.ch(i))
            i += 1
        if self.ch(i) == quote:
            i += 1
        return i, "".join(parts)

    def close_tag(self) -> None:
        begin = self.i
        if not self.stack:
            raise self.fail(f"Unexpected end tag {self.at(begin)}")
        i = begin + 2
        while not _is_space(self.ch(i)) and self.ch(i) != ">":
            i += 1
        end_name = self.src[begin + 2:i].lower()
        while self.ch(i) != "" and _is_space(self.ch(i)):
            i += 1
        if self.ch(i) != ">":
            raise self.fail(f"Unclosed end tag {self.at(begin)}")
        top = self.stack[-1]
        if end_name and end_name != top.tag:
            raise self.fail(f'Unmatched end tag {self.at(begin)}, expected "</{top.tag}>", '
                            f'found "</{end_name}>"')
        if self.u16 > top.utf16_offset:  # empty elements produce no entity
            self.add_entity(top)
        self.stack.pop()
        self.i = i + 1

    def add_entity(self, top: _Open) -> None:
        base: dict[str, Any] = {"offset": top.utf16_offset, "length": self.u16 - top.utf16_offset}
        if top.tag in _SIMPLE_TYPES:
            self.entities.append({"type": _SIMPLE_TYPES[top.tag], **base})
        elif top.tag == "blockquote":
            kind = "expandable_blockquote" if top.argument == "expandable" else "blockquote"
            self.entities.append({"type": kind, **base})
        elif top.tag == "tg-emoji":
            if not top.argument.isdigit() or int(top.argument) == 0:
                raise self.fail("Invalid custom emoji identifier specified")
            self.entities.append({"type": "custom_emoji", **base, "custom_emoji_id": top.argument})
        elif top.tag == "a":
            self.add_link(top, base)
        elif top.tag == "pre":
            self.add_pre(base)
        else:
            self.add_code(top, base)

    def _last_with_range(self, base: dict[str, Any], kind: str) -> dict[str, Any] | None:
        last = self.entities[-1] if self.entities else None
        if last is None or last["type"] != kind:
            return None
        return last if (last["offset"], last["length"]) == (base["offset"], base["length"]) else None

    def add_pre(self, base: dict[str, Any]) -> None:
        code = self._last_with_range(base, "code")
        if code is not None and code.get("language"):
            code["type"] = "pre"  # <pre> around exactly a <code class="language-x">: one pre with language
        else:
            self.entities.append({"type": "pre", **base})

    def add_code(self, top: _Open, base: dict[str, Any]) -> None:
        pre = self._last_with_range(base, "pre")
        if pre is not None and top.argument:
            pre["language"] = top.argument  # <code class="language-x"> as the whole content of a <pre>
            return
        entity = {"type": "code", **base}
        if top.argument:
            entity["language"] = top.argument  # dropped at the end unless an enclosing <pre> claims it
        self.entities.append(entity)

    def add_link(self, top: _Open, base: dict[str, Any]) -> None:
        url = top.argument or "".join(self.out[top.text_index:])
        user = _USER_LINK.match(url)
        if user:
            self.entities.append({"type": "text_mention", **base,
                                  "user": {"id": int(user.group(1)), "is_bot": False, "first_name": ""}})
            return
        checked = _checked_link(url)
        if checked:  # like tdlib, an invalid URL silently produces plain text
            self.entities.append({"type": "text_link", **base, "url": checked})


def _tag_argument(tag: str, name: str, value: str | None, current: str) -> str:
    if tag == "blockquote" and name == "expandable":
        return "expandable"
    if value is None:
        return current
    if tag == "a" and name == "href":
        return value
    if tag == "code" and name == "class" and value.startswith("language-"):
        return value[len("language-"):]
    if tag == "span" and name == "class" and value.startswith("tg-"):
        return value[len("tg-"):]
    if tag == "tg-emoji" and name == "emoji-id":
        return value
    return current


def _checked_link(url: str) -> str | None:
    """Approximation of tdlib's LinkManager::get_checked_link: a scheme we know, or a bare host."""
    if not url or any(c.isspace() for c in url):
        return None
    scheme, sep, rest = url.partition("://")
    if not sep:
        if url.lower().startswith("tg:"):
            return url
        if "." not in url.split("/", 1)[0]:
            return None
        host, slash, path = url.partition("/")
        return f"http://{host}/{path}" if slash else f"http://{host}/"
    if scheme.lower() not in _LINK_SCHEMES or not rest:
        return None
    return url


def parse_html(text: str, *, strict_ampersand: bool = True) -> ParsedText:
    """Parse Telegram-HTML; raise :class:`EntityParseError` with tdlib's message when Telegram would."""
    return _HtmlParser(text, strict_ampersand).run()


_MD_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


def parse_entities(text: str, parse_mode: str | None, *, strict_ampersand: bool = True) -> ParsedText:
    """Apply a Bot API ``parse_mode``. MarkdownV2/Markdown are accepted unvalidated (escapes removed)."""
    mode = (parse_mode or "").lower()
    if mode == "html":
        return parse_html(text, strict_ampersand=strict_ampersand)
    if mode in ("markdownv2", "markdown"):
        return ParsedText(_MD_ESCAPE.sub(r"\1", text))
    if mode:
        raise EntityParseError(f"Unsupported parse_mode {parse_mode!r}")
    return ParsedText(text)


def strip_whitespace(parsed: ParsedText) -> ParsedText:
    """Trim leading/trailing whitespace like Telegram does and clip the entities to what is left."""
    text = parsed.text
    stripped = text.strip(_TRIM)
    if stripped == text:
        return parsed
    left = utf16_len(text[:len(text) - len(text.lstrip(_TRIM))])
    new_len = utf16_len(stripped)
    entities = []
    for entity in parsed.entities:
        start = max(entity["offset"] - left, 0)
        end = min(entity["offset"] + entity["length"] - left, new_len)
        if end > start:
            entities.append({**entity, "offset": start, "length": end - start})
    return ParsedText(stripped, entities)


_TAG_NAMES = "|".join(sorted(_TAGS, key=len, reverse=True))
_TAG_RE = re.compile(rf"</?(?:{_TAG_NAMES})(?=[\s>/])[^>]*>", re.IGNORECASE)


def html_to_plain(text: str) -> str:
    """Readable plain text for display; never raises (falls back to a crude tag strip)."""
    try:
        return parse_html(text, strict_ampersand=False).text
    except EntityParseError:
        return html.unescape(_TAG_RE.sub("", text))
