"""The daily spend chart: a valid PNG, the same bytes for the same data, every client in its colour, and a small
"no spend" image when there is nothing to draw."""

from __future__ import annotations

import io
from datetime import date, timedelta
from decimal import Decimal

from PIL import Image

from services.gateway import chart

D = Decimal
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _days(n: int, first: date = date(2026, 11, 1)) -> list[str]:
    return [(first + timedelta(days=i)).isoformat() for i in range(n)]


def _data(n: int = 7) -> dict[str, dict[str, Decimal]]:
    return {day: {"acme": D("1.25") * (i % 4), "beta": D("0.30") * i, "internal": D("0.05")}
            for i, day in enumerate(_days(n))}


def _open(png: bytes) -> Image.Image:
    assert png.startswith(PNG_SIGNATURE)
    image = Image.open(io.BytesIO(png))
    image.load()
    assert image.format == "PNG" and image.mode == "RGB"
    return image


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return int(hex_colour[1:3], 16), int(hex_colour[3:5], 16), int(hex_colour[5:7], 16)


def _colours(image: Image.Image) -> set[object]:
    return {c for _, c in image.getcolors(maxcolors=1 << 20) or []}


def test_chart_is_a_png_with_one_colour_per_client() -> None:
    image = _open(chart.daily_spend_png(_data(), "Daily spend by client"))
    assert image.width == chart.WIDTH and 380 <= image.height <= 600
    colours = _colours(image)
    # Clients by total, largest first (acme $11.25, beta $6.30, internal $0.35), each in its palette colour.
    assert {_rgb(c) for c in chart.PALETTE[:3]} <= colours
    assert _rgb(chart.PALETTE[3]) not in colours  # three clients, three colours


def test_same_data_gives_the_same_bytes_whatever_the_dict_order() -> None:
    data = _data(31)
    shuffled = {day: dict(reversed(list(per.items()))) for day, per in reversed(list(data.items()))}
    first = chart.daily_spend_png(data, "t")
    assert chart.daily_spend_png(data, "t") == first
    assert chart.daily_spend_png(shuffled, "t") == first
    changed = {**data, _days(1)[0]: {"acme": D("9")}}
    assert chart.daily_spend_png(changed, "t") != first
    assert chart.daily_spend_png(data, "other title") != first


def test_series_keeps_the_newest_31_days_and_folds_small_clients_into_other() -> None:
    data = {day: {f"c{i:02d}": D(i + 1) for i in range(11)} for day in _days(40)}
    days, clients, totals = chart._series(data)
    assert days == _days(40)[-31:]
    assert clients == ["c10", "c09", "c08", "c07", "c06", "c05", "c04", "other"]
    assert totals["c10"] == D(11 * 31) and totals["other"] == D((1 + 2 + 3 + 4) * 31)
    image = _open(chart.daily_spend_png(data, "many"))
    assert _rgb(chart.OTHER_COLOUR) in _colours(image)


def test_axis_steps_are_round_numbers() -> None:
    assert chart._nice_step(13.75) == 5  # $0, $5, $10, $15
    assert chart._nice_step(0.0003) == 0.0001
    assert chart._nice_step(8) == 2
    assert chart._axis_label(2.5, 2.5) == "$2.5" and chart._axis_label(10, 5) == "$10"
    assert chart._day_label("2026-11-05") == "11-05"


def test_no_spend_gives_a_small_image() -> None:
    cases: list[dict[str, dict[str, Decimal]]] = [{}, {day: {} for day in _days(7)}, {"2026-11-01": {"acme": D(0)}}]
    for empty in cases:
        png = chart.daily_spend_png(empty, "Daily spend by client")
        image = _open(png)
        assert image.size == (420, 120)
        assert chart.daily_spend_png(empty, "Daily spend by client") == png
    assert len(_colours(image)) > 2  # the title and "no spend" are drawn, not a blank canvas
