"""The archive's YAML emitter: whatever it writes, libyaml reads back exactly, and text stays readable."""

from __future__ import annotations

import random

from services.lore import yamlio

AWKWARD = ["a", "", " ", "\n", "\n\n", "x\n", "x\n\n", "x\n\n\n", " lead\nx", "  two\n  lines\n", "\n  after blank",
           "tab\tin\nblock", "trail  \nspaces  ", "yes", "No", "null", "~", "123", "1.5", "0x1F", "2026-03-14",
           "2026-03-14T09:12:03.118Z", "key: value", "- item", "# hash", "a #b", "é中\nß", "\r\nwin", "ctl\x01\nx",
           "\u2028sep\nx", "emoji 😀\nx", "nel\x85x", "del\x7f", "\ufeffbom", "---\nx", "...\nx", "x\n---\ny", "  ",
           "\t", "@at", "`tick", "%pct", "!bang", "&amp", "*star", "|pipe", ">gt", "Z\n", "'q'", '"dq"', "{a}", "[b]",
           "a: b\nc: d", "\n\nx", "x\n \n", " \n x", "  \n\n  x\n", "\\back\nslash", "\ta\nb", "\n\tx"]


def shapes(s: str) -> list[object]:
    return [{"k": s}, {"k": [s]}, [{"k": s}], {"a": {"b": [s]}}, {"a": [[s]]}, {s or "e": 1}, [s, {"m": [s]}]]


def test_awkward_and_random_strings_round_trip_in_every_position() -> None:
    rnd = random.Random(3)
    alphabet = " \n\t#:-|>'\"abcXYZ019é😀\u2028\x01\x85\x7f\ufeff{}[]&*!%@`.~"
    samples = AWKWARD + ["".join(rnd.choice(alphabet) for _ in range(rnd.randrange(0, 14))) for _ in range(3000)]
    for s in samples:
        for d in shapes(s):
            assert yamlio.load(yamlio.dump(d)) == d, (s, yamlio.dump(d))


def test_numbers_booleans_null_and_tricky_keys() -> None:
    d = {"nums": [0, -1, 1.5, 1e20, 1e-7, 5e-05, 0.0339155, -2.5e-10, 2**70, True, False, None, {}, []],
         "true": 1, "": 2, "123": 3, "yes": [], "a b": {}}
    assert yamlio.load(yamlio.dump(d)) == d


def test_multi_line_text_is_a_literal_block() -> None:
    text = yamlio.dump({"messages": [{"content": [{"type": "text", "text": "line one\nline two\n"}]}]})
    assert "text: |\n" in text and "        line two\n" in text
