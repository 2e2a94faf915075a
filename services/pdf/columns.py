"""The widths of the statement table's columns, sized for its widest amounts.

An amount must never wrap, so the net, VAT and gross columns are widened to
their widest amount, taking the room from the number, type, currency and date
columns down to their minimum widths. Only when that is not enough are the
amount cells printed in a smaller font.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from fpdf.enums import Align

FONT_SIZE = 8.0
PADDING = 1.0


@dataclass(frozen=True)
class Column:
    width: float
    align: Align
    # The font size of the column's cells; None keeps the row's size.
    size: float | None = None


# Number, date, type, net, VAT, gross, currency; 180 mm in all. These are the
# widths for usual amounts.
COLUMNS = (
    Column(36.0, Align.L),
    Column(21.0, Align.L),
    Column(33.0, Align.L),
    Column(25.0, Align.R),
    Column(22.0, Align.R),
    Column(25.0, Align.R),
    Column(18.0, Align.L),
)
TABLE_WIDTH = sum(column.width for column in COLUMNS)
AMOUNT_COLUMNS = (3, 4, 5)
DATE_COLUMN = 1
# The narrowest the text columns get when the amount columns take their room;
# the date column keeps at least its widest date.
MIN_TEXT_WIDTHS = {0: 24.0, 1: 17.0, 2: 24.0, 6: 14.0}
# Room left beside the widest text, so rounding never makes it wrap.
SLACK = 0.5


def table_columns(amounts: Sequence[float], date: float) -> tuple[Column, ...]:
    """Return the columns for amounts and a date this wide, in mm at `FONT_SIZE`.

    `amounts` has the widest text of the net, VAT and gross columns, and
    `date` that of the date column, both without padding.
    """
    needed = [width + 2 * PADDING + SLACK for width in amounts]
    widths = [column.width for column in COLUMNS]
    for index, width in zip(AMOUNT_COLUMNS, needed, strict=True):
        widths[index] = max(widths[index], width)
    minimums = dict(MIN_TEXT_WIDTHS)
    minimums[DATE_COLUMN] = max(minimums[DATE_COLUMN], date + 2 * PADDING + SLACK)

    excess = sum(widths) - TABLE_WIDTH
    if excess <= 0:
        return _columns(widths, None)
    room = {index: max(widths[index] - low, 0.0) for index, low in minimums.items()}
    spare = sum(room.values())
    if spare >= excess:
        for index, width in room.items():
            widths[index] -= excess * width / spare
        return _columns(widths, None)

    # The text columns are at their minimum, so the amounts share what is left
    # and are printed smaller, by the factor that makes the widest one fit.
    for index in room:
        widths[index] -= room[index]
    left = TABLE_WIDTH - sum(widths[index] for index in room)
    margins = (2 * PADDING + SLACK) * len(AMOUNT_COLUMNS)
    scale = (left - margins) / sum(amounts)
    for index, width in zip(AMOUNT_COLUMNS, amounts, strict=True):
        widths[index] = width * scale + 2 * PADDING + SLACK
    return _columns(widths, FONT_SIZE * scale)


def _columns(widths: list[float], amount_size: float | None) -> tuple[Column, ...]:
    columns = [
        replace(column, width=width)
        for column, width in zip(COLUMNS, widths, strict=True)
    ]
    for index in AMOUNT_COLUMNS:
        columns[index] = replace(columns[index], size=amount_size)
    return tuple(columns)
