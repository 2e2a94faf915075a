"""The statement PDF: A4 portrait, a header, the documents table and the totals.

Text is placed with `FPDF.text` after wrapping it here, rather than with
`FPDF.cell`, `FPDF.multi_cell` or `FPDF.table`, which run every cell through
fpdf2's general line breaking and made a 20-row statement several times
slower. Rows and boxes measure their text and grow to fit the wrapped lines.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from fpdf import FPDF
from fpdf.enums import Align, XPos, YPos

from services.formatting import (
    document_type_label,
    format_amount,
    format_date,
    format_period,
    format_rate,
    language_of,
)
from services.pdf.columns import (
    AMOUNT_COLUMNS,
    COLUMNS,
    FONT_SIZE,
    PADDING,
    Column,
    table_columns,
)
from services.pdf.fonts import FAMILY, add_statement_fonts
from services.pdf.labels import Labels, labels_for
from services.pdf.output import StatementOutputProducer
from services.statements import CurrencyTotal, Statement

PAGE_WIDTH = 210.0
PAGE_HEIGHT = 297.0
MARGIN = 15.0
CONTENT_WIDTH = PAGE_WIDTH - 2 * MARGIN
# The table stops above the footer, which sits in the bottom margin area.
TABLE_BOTTOM = PAGE_HEIGHT - MARGIN - 6.0

LINE_HEIGHT = 3.8
BASELINE = 2.9
BOX_GAP = 6.0


NUMBER_BREAKS = "-/_"


class StatementDocument(FPDF):
    """An FPDF document with the statement's "page N of M" footer."""

    def __init__(self, labels: Labels) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.labels = labels
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_auto_page_break(auto=False)
        self.c_margin = PADDING
        self.columns: tuple[Column, ...] = COLUMNS

    def output(self, *args: Any, **kwargs: Any) -> Any:
        """Write the PDF with the statement fonts' cached subsets."""
        kwargs.setdefault("output_producer_class", StatementOutputProducer)
        return super().output(*args, **kwargs)

    def footer(self) -> None:
        self.set_xy(MARGIN, PAGE_HEIGHT - MARGIN)
        self.set_font(FAMILY, "", 7.5)
        text = self.labels.page_of.format(
            page=self.page_no(), pages=self.str_alias_nb_pages
        )
        self.cell(CONTENT_WIDTH, 4, text, align=Align.C)


def render_statement_pdf(statement: Statement) -> bytes:
    """Render the statement as an A4 PDF in the client's language."""
    language = language_of(statement.client.language)
    labels = labels_for(language)
    pdf = StatementDocument(labels)
    add_statement_fonts(pdf, _texts(statement, labels))
    pdf.set_title(f"{labels.title} {statement.period}")
    pdf.set_author(statement.company.name)
    pdf.set_lang(language)

    pdf.columns = _sized_columns(pdf, statement, language)

    pdf.add_page()
    _draw_header(pdf, statement, language)
    _draw_headings(pdf)
    if not statement.rows:
        pdf.set_font(FAMILY, "", FONT_SIZE)
        _draw_row(pdf, [labels.no_documents], [Column(CONTENT_WIDTH, Align.L)])
    for row in statement.rows:
        cells = [
            row.number,
            format_date(row.date, language),
            document_type_label(row.type, language),
            format_amount(row.net, language),
            format_amount(row.vat, language),
            format_amount(row.gross, language),
            row.currency,
        ]
        _draw_table_row(pdf, cells, pdf.columns)
    for total in statement.totals:
        _draw_total(pdf, total, language)

    return bytes(pdf.output())


def _sized_columns(
    pdf: StatementDocument, statement: Statement, language: str
) -> tuple[Column, ...]:
    """Size the table's columns for the widest amount and date it prints."""
    rows: list[list[str]] = [[] for _ in AMOUNT_COLUMNS]
    totals: list[list[str]] = [[] for _ in AMOUNT_COLUMNS]
    for row in statement.rows:
        for cells, amount in zip(rows, (row.net, row.vat, row.gross), strict=True):
            cells.append(format_amount(amount, language))
    for total in statement.totals:
        amounts = (total.net, total.vat, total.gross)
        for cells, amount in zip(totals, amounts, strict=True):
            cells.append(format_amount(amount, language))
        for line in total.by_rate:
            rows[0].append(format_amount(line.net, language))
            rows[1].append(format_amount(line.vat, language))

    # Totals are printed in bold, which is wider.
    pdf.set_font(FAMILY, "", FONT_SIZE)
    regular = [_widest(pdf, cells) for cells in rows]
    dates = _widest(pdf, [format_date(row.date, language) for row in statement.rows])
    pdf.set_font(FAMILY, "B", FONT_SIZE)
    bold = [_widest(pdf, cells) for cells in totals]
    widest = [max(pair) for pair in zip(regular, bold, strict=True)]
    return table_columns(widest, dates)


def _widest(pdf: FPDF, texts: Sequence[str]) -> float:
    return max((_text_width(pdf, text) for text in texts), default=0.0)


def _draw_header(pdf: StatementDocument, statement: Statement, language: str) -> None:
    labels = pdf.labels
    pdf.set_font(FAMILY, "B", 15)
    pdf.cell(CONTENT_WIDTH, 8, labels.title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(FAMILY, "", 10)
    period = format_period(statement.period, language)
    pdf.cell(
        CONTENT_WIDTH,
        6,
        f"{labels.period}: {period}",
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.ln(3)

    company, client = statement.company, statement.client
    seller_lines = [
        f"{labels.company_code}: {company.code}",
        f"{labels.vat_code}: {company.vat_code}",
        company.address,
    ]
    client_lines = [f"{labels.client_code}: {client.code}"]
    if client.registration_code:
        client_lines.append(f"{labels.company_code}: {client.registration_code}")
    if client.vat_code:
        client_lines.append(f"{labels.vat_code}: {client.vat_code}")
    client_lines.append(client.address)

    top = pdf.get_y()
    box_width = (CONTENT_WIDTH - BOX_GAP) / 2
    seller_bottom = _draw_box(
        pdf, MARGIN, top, box_width, labels.seller, company.name, seller_lines
    )
    client_bottom = _draw_box(
        pdf,
        MARGIN + box_width + BOX_GAP,
        top,
        box_width,
        labels.client,
        client.name,
        client_lines,
    )
    pdf.set_xy(MARGIN, max(seller_bottom, client_bottom) + 5)


def _draw_box(
    pdf: FPDF,
    x: float,
    y: float,
    width: float,
    caption: str,
    name: str,
    details: Sequence[str],
) -> float:
    """Draw a party's caption, name and details wrapped to `width`; return the end y."""
    blocks = [
        _BoxText("", 7.5, 4.0, 90, caption.upper()),
        _BoxText("B", 10.0, 5.0, 0, name),
        *(_BoxText("", 9.0, 4.5, 0, detail) for detail in details if detail),
    ]
    for block in blocks:
        pdf.set_font(FAMILY, block.style, block.size)
        pdf.set_text_color(block.gray)
        for line in _wrap(pdf, block.text, width):
            pdf.text(x + PADDING, y + 0.78 * block.line_height, line)
            y += block.line_height
    pdf.set_text_color(0)
    return y


@dataclass(frozen=True)
class _BoxText:
    style: str
    size: float
    line_height: float
    gray: int
    text: str


def _draw_headings(pdf: StatementDocument) -> None:
    labels = pdf.labels
    headings = [
        labels.number,
        labels.date,
        labels.type,
        labels.net,
        labels.vat,
        labels.gross,
        labels.currency,
    ]
    # Headings keep the table's font size when the amounts are printed smaller.
    columns = [replace(column, size=None) for column in pdf.columns]
    pdf.set_font(FAMILY, "B", FONT_SIZE)
    pdf.set_fill_color(230)
    lines = _wrap_cells(pdf, headings, columns)
    height = _row_height(lines)
    pdf.rect(MARGIN, pdf.get_y(), CONTENT_WIDTH, height, style="F")
    _draw_lines(pdf, lines, columns, height)
    pdf.set_font(FAMILY, "", FONT_SIZE)


def _draw_table_row(
    pdf: StatementDocument, cells: Sequence[str], columns: Sequence[Column]
) -> None:
    """Draw one row, first starting a new page with the headings if it does not fit."""
    lines = _wrap_cells(pdf, cells, columns)
    height = _row_height(lines)
    if pdf.get_y() + height > TABLE_BOTTOM:
        _new_page(pdf)
    _draw_lines(pdf, lines, columns, height)


def _draw_row(pdf: FPDF, cells: Sequence[str], columns: Sequence[Column]) -> None:
    lines = _wrap_cells(pdf, cells, columns)
    _draw_lines(pdf, lines, columns, _row_height(lines))


def _new_page(pdf: StatementDocument) -> None:
    style, size = pdf.font_style, pdf.font_size_pt
    pdf.add_page()
    _draw_headings(pdf)
    pdf.set_font(FAMILY, style, size)


def _draw_total(pdf: StatementDocument, total: CurrencyTotal, language: str) -> None:
    """Draw one currency's totals and its VAT lines, kept together on one page."""
    label_column = Column(sum(column.width for column in pdf.columns[:3]), Align.R)
    columns = [label_column, *pdf.columns[3:]]
    rows = [
        [
            pdf.labels.vat_at_rate.format(rate=format_rate(line.rate, language)),
            format_amount(line.net, language),
            format_amount(line.vat, language),
            "",
            total.currency,
        ]
        for line in total.by_rate
    ]
    needed = LINE_HEIGHT * (len(rows) + 1) + 2 * PADDING * (len(rows) + 1) + 2
    if pdf.get_y() + needed > TABLE_BOTTOM:
        _new_page(pdf)

    pdf.set_y(pdf.get_y() + 2)
    pdf.set_font(FAMILY, "B", FONT_SIZE)
    _draw_row(
        pdf,
        [
            pdf.labels.total,
            format_amount(total.net, language),
            format_amount(total.vat, language),
            format_amount(total.gross, language),
            total.currency,
        ],
        columns,
    )
    pdf.set_font(FAMILY, "", FONT_SIZE)
    for cells in rows:
        _draw_row(pdf, cells, columns)


def _wrap_cells(
    pdf: FPDF, cells: Sequence[str], columns: Sequence[Column]
) -> list[list[str]]:
    wrapped = []
    size = pdf.font_size_pt
    for text, column in zip(cells, columns, strict=True):
        _set_size(pdf, column.size or size)
        wrapped.append(_wrap(pdf, text, column.width))
    _set_size(pdf, size)
    return wrapped


def _set_size(pdf: FPDF, size: float) -> None:
    if pdf.font_size_pt != size:
        pdf.set_font_size(size)


def _wrap(pdf: FPDF, text: str, width: float) -> list[str]:
    """Split `text` into lines that fit a column `width` wide, padding included.

    Lines break at spaces and line breaks. A word wider than the column is
    broken after the last `NUMBER_BREAKS` character that fits, else between
    characters. No-break spaces never break.
    """
    room = width - 2 * PADDING
    if "\n" not in text and _text_width(pdf, text) <= room:
        return [text]

    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if _text_width(pdf, candidate) <= room:
                line = candidate
                continue
            if line:
                lines.append(line)
            while len(word) > 1 and _text_width(pdf, word) > room:
                cut = _break_point(word, _longest_fitting_prefix(pdf, word, room))
                lines.append(word[:cut])
                word = word[cut:]
            line = word
        lines.append(line)
    return lines


def _break_point(word: str, cut: int) -> int:
    """Move `cut` back to just after a '-', '/' or '_' in `word[:cut]`, if any."""
    if cut >= len(word):
        return cut
    after = max(word.rfind(char, 0, cut) for char in NUMBER_BREAKS) + 1
    return after if after > 1 else cut


def _longest_fitting_prefix(pdf: FPDF, word: str, room: float) -> int:
    cut = 1
    while cut < len(word) and _text_width(pdf, word[: cut + 1]) <= room:
        cut += 1
    return cut


def _text_width(pdf: FPDF, text: str) -> float:
    """Measure `text` in the current font, in mm.

    `FPDF.get_string_width` gives the same result through fpdf2's general
    text pipeline (markdown, bidirectional text, font fallback), which made
    it the slowest step of a statement with a few hundred cells.
    """
    font = pdf.current_font
    assert font is not None
    width_pt: float = font.get_text_width(text, pdf.font_size_pt, None)[1]
    return width_pt / pdf.k


def _row_height(lines: Sequence[Sequence[str]]) -> float:
    return max(len(cell) for cell in lines) * LINE_HEIGHT + 2 * PADDING


def _draw_lines(
    pdf: FPDF, lines: Sequence[Sequence[str]], columns: Sequence[Column], height: float
) -> None:
    """Print the cells' lines from the current y, then rule a line under the row."""
    top = pdf.get_y()
    size = pdf.font_size_pt
    for x, cell, column in _placed(lines, columns):
        _set_size(pdf, column.size or size)
        baseline = top + PADDING + BASELINE
        for text in cell:
            if column.align is Align.R:
                start = x + column.width - PADDING - _text_width(pdf, text)
            else:
                start = x + PADDING
            pdf.text(start, baseline, text)
            baseline += LINE_HEIGHT
    _set_size(pdf, size)

    bottom = top + height
    pdf.set_draw_color(200)
    pdf.set_line_width(0.2)
    pdf.line(MARGIN, bottom, MARGIN + CONTENT_WIDTH, bottom)
    pdf.set_y(bottom)


def _placed(
    lines: Sequence[Sequence[str]], columns: Sequence[Column]
) -> Iterator[tuple[float, Sequence[str], Column]]:
    x = MARGIN
    for cell, column in zip(lines, columns, strict=True):
        yield x, cell, column
        x += column.width


def _texts(statement: Statement, labels: Labels) -> Iterator[str]:
    """Yield every piece of text the PDF can print, to choose the font files."""
    company, client = statement.company, statement.client
    yield from (company.name, company.code, company.vat_code, company.address)
    yield from (client.name, client.code, client.address)
    yield from (client.registration_code, client.vat_code)
    for row in statement.rows:
        yield row.number
        yield row.currency
    yield from (str(value) for value in vars(labels).values())
    # Month names and separators come from Babel's data for the language.
    yield format_period(statement.period, client.language)
