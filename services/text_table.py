"""Fixed-width text tables, for the terminal and for Telegram's <pre> blocks (plain text; the caller escapes)."""

from __future__ import annotations

from collections.abc import Sequence


def fixed_width(head: Sequence[str], rows: Sequence[Sequence[str]], foot: Sequence[str] | None = None, *,
                left: int = 1, rule: str = "-") -> str:
    """Columns as wide as their widest cell; the first `left` columns left-aligned, the rest right-aligned (numbers).

    rich renders a few hundred rows slower than the query that fills them, so reports that can run long use this.
    """
    every = [head, *rows, *([foot] if foot is not None else [])]
    widths = [max(len(r[i]) for r in every) for i in range(len(head))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths,
                                                                                               strict=True)))

    bar = rule * (sum(widths) + 2 * (len(widths) - 1))
    out = [line(head), bar, *(line(r) for r in rows)]
    if foot is not None:
        out += [bar, line(foot)]
    return "\n".join(out)
