"""Splitting and escaping: every chunk must stay within Telegram's limit and parse as HTML on its own."""

from __future__ import annotations

from html.parser import HTMLParser

from bot.render import esc, split_html


class _Balance(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"unbalanced </{tag}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _plain(chunk: str) -> str:
    p = _Balance()
    p.feed(chunk)
    p.close()
    assert p.stack == [], f"unclosed {p.stack}"
    return "".join(p.text)


def test_short_text_is_one_chunk() -> None:
    assert split_html("hello") == ["hello"]


def test_pre_block_spanning_a_cut_is_closed_and_reopened() -> None:
    body = "\n".join(f"line {i} {esc('<x> & y')}" for i in range(800))
    text = f"<b>Log</b>\n<pre>{body}</pre>"
    chunks = split_html(text)
    assert len(chunks) >= 3
    for c in chunks:
        assert len(c) <= 4096
        _plain(c)
    assert all(c.startswith("<pre>") for c in chunks[1:])
    joined = "\n".join(_plain(c) for c in chunks)
    assert joined == _plain(text)


def test_a_single_huge_line_is_cut_outside_entities_and_tags() -> None:
    text = ("a&amp;b <i>c</i> " * 2000).strip()
    chunks = split_html(text)
    for c in chunks:
        assert len(c) <= 4096
        _plain(c)  # no half entity, no half tag
    assert "".join(_plain(c) for c in chunks) == _plain(text)


def test_escape_covers_telegram_specials() -> None:
    assert esc('<script>&"') == '&lt;script&gt;&amp;"'
