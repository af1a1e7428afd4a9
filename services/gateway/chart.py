"""A PNG chart of daily spend by client: stacked bars, one colour per client, drawn with Pillow alone.

Pillow is imported only when a chart is drawn (the bot and CLI start without it). The same input gives the same
bytes: clients are ordered by total then name, every coordinate is computed from the data alone, and the PNG
carries no timestamp.
"""

from __future__ import annotations

import io
import math
from decimal import Decimal
from typing import Any

from .ledger import format_usd

MAX_DAYS = 31  # the newest days are kept when there are more
MAX_CLIENTS = 8  # the rest are drawn together as "other"
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7")
OTHER_COLOUR = "#9c9c9c"
BACKGROUND, INK, MUTED, GRID = "#ffffff", "#222222", "#666666", "#e3e3e3"
WIDTH, PLOT_HEIGHT = 900, 300
LEFT, RIGHT, TOP = 78, 24, 44
FONT_SIZE = 13


def _nice_step(top: float, lines: int = 4) -> float:
    """A round gridline step (1, 2, 2.5 or 5 × 10ⁿ) giving about `lines` gridlines up to `top`."""
    raw = top / lines
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw * (1 - 1e-9))


def _axis_label(value: float, step: float) -> str:
    decimals = next((d for d in range(7) if abs(round(step, d) - step) < step * 1e-6), 6)
    return f"${value:,.{decimals}f}"


def _day_label(day: str) -> str:
    return day[5:10] if len(day) >= 10 and day[4] == "-" else day[:5]


def _series(data: dict[str, dict[str, Decimal]]) -> tuple[list[str], list[str], dict[str, Decimal]]:
    """The days drawn (sorted, the newest MAX_DAYS), the clients (largest total first, the tail as "other")
    and each client's total over those days."""
    days = sorted(data)[-MAX_DAYS:]
    totals: dict[str, Decimal] = {}
    for day in days:
        for client, cost in data[day].items():
            if cost > 0:
                totals[client] = totals.get(client, Decimal(0)) + cost
    clients = sorted(totals, key=lambda c: (-totals[c], c))
    if len(clients) > MAX_CLIENTS:
        rest = clients[MAX_CLIENTS - 1:]
        totals["other"] = sum((totals.pop(c) for c in rest), Decimal(0))
        clients = [*clients[:MAX_CLIENTS - 1], "other"]
    return days, clients, totals


def _font(size: int = FONT_SIZE) -> Any:
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _png(image: Any) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def _empty(title: str) -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (420, 120), BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.text((16, 14), title, fill=INK, font=_font(FONT_SIZE + 1))
    draw.text((210, 72), "no spend", fill=MUTED, font=_font(FONT_SIZE + 3), anchor="mm")
    return _png(image)


def daily_spend_png(data: dict[str, dict[str, Decimal]], title: str) -> bytes:
    """`{"YYYY-MM-DD": {client: usd}}` as a stacked bar chart of spend per day and client (PNG bytes)."""
    days, clients, totals = _series(data)
    if not clients:
        return _empty(title)
    from PIL import Image, ImageDraw

    font, title_font = _font(), _font(FONT_SIZE + 2)
    colour = {c: (OTHER_COLOUR if c == "other" else PALETTE[i % len(PALETTE)]) for i, c in enumerate(clients)}
    main = set(clients) - {"other"}

    def stack(day: str) -> list[tuple[str, float]]:
        values = {c: float(v) for c, v in data[day].items() if v > 0 and c in main}
        other = sum(float(v) for c, v in data[day].items() if v > 0 and c not in main)
        if other:
            values["other"] = other
        return [(c, values[c]) for c in clients if c in values]

    stacks = {day: stack(day) for day in days}
    peak = max(sum(v for _, v in s) for s in stacks.values())
    step = _nice_step(peak)
    top = step * math.ceil(peak / step - 1e-9)

    # Legend entries (swatch, name and total) flow in rows under the x axis.
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    entries = [(c, f"{c}  {format_usd(totals[c])}") for c in clients]
    rows: list[list[tuple[str, str, float]]] = [[]]
    x = float(LEFT)
    for client, text in entries:
        w = 18 + probe.textlength(text, font=font) + 22
        if rows[-1] and x + w > WIDTH - RIGHT:
            rows.append([])
            x = float(LEFT)
        rows[-1].append((client, text, x))
        x += w
    base = TOP + PLOT_HEIGHT
    legend_top = base + 34
    height = legend_top + 22 * len(rows) + 10

    image = Image.new("RGB", (WIDTH, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.text((LEFT, 14), title, fill=INK, font=title_font)

    # Gridlines and y labels.
    scale = PLOT_HEIGHT / top
    n_lines = round(top / step)
    for i in range(n_lines + 1):
        y = round(base - i * step * scale)
        draw.line([(LEFT, y), (WIDTH - RIGHT, y)], fill=GRID if i else MUTED, width=1)
        draw.text((LEFT - 8, y), _axis_label(i * step, step), fill=MUTED, font=font, anchor="rm")
    draw.text((12, 16), "USD", fill=MUTED, font=font)

    # Bars, stacked from the baseline; boundaries come from running sums so the stack never drifts.
    plot_width = WIDTH - RIGHT - LEFT
    slot = plot_width / len(days)
    bar = min(max(1.0, slot * 0.64), 48.0)
    label_width = probe.textlength("00-00", font=font) + 10
    every = max(1, math.ceil(label_width / slot))
    for i, day in enumerate(days):
        middle = LEFT + (i + 0.5) * slot
        x0, x1 = round(middle - bar / 2), round(middle + bar / 2) - 1
        running = 0.0
        for client, value in stacks[day]:
            y_low = round(base - running * scale)
            running += value
            y_high = round(base - running * scale)
            if y_high < y_low:
                draw.rectangle([(x0, y_high), (max(x0, x1), y_low - 1)], fill=colour[client])
        if (len(days) - 1 - i) % every == 0:  # the newest day always has its label
            draw.text((round(middle), base + 6), _day_label(day), fill=MUTED, font=font,
                      anchor="mt")

    for r, row in enumerate(rows):
        y = legend_top + 22 * r
        for client, text, lx in row:
            draw.rectangle([(round(lx), y + 2), (round(lx) + 11, y + 13)], fill=colour[client])
            draw.text((round(lx) + 18, y), text, fill=INK, font=font)
    return _png(image)
