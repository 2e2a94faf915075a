"""The statement drawn with reportlab's platypus, to compare the product's PDF with.

It prints what `services.pdf` prints, from the same labels and formatting:
the title and period, the seller and client boxes, and a table with the same
seven columns whose headings repeat on every page. Then come the totals per
currency with the VAT lines, and "page N of M" in the footer, all in DejaVu
Sans.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from services.formatting import (
    document_type_label,
    format_amount,
    format_date,
    format_period,
    format_rate,
    language_of,
)
from services.pdf.fonts import FONTS_DIR
from services.pdf.labels import labels_for
from services.statements import Statement

FONT = "DejaVuSans"
BOLD = "DejaVuSans-Bold"
WIDTHS = [w * mm for w in (36.0, 21.0, 33.0, 25.0, 22.0, 25.0, 18.0)]


def register_fonts() -> None:
    """Register DejaVu Sans once per process, as fpdf's side caches its fonts too."""
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(FONT, str(FONTS_DIR / "DejaVuSans.ttf")))
        pdfmetrics.registerFont(TTFont(BOLD, str(FONTS_DIR / "DejaVuSans-Bold.ttf")))


class NumberedCanvas(Canvas):
    """A canvas that keeps its pages until the end, to print "page N of M"."""

    def __init__(self, *args: Any, page_of: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pages: list[dict[str, Any]] = []
        self._page_of = page_of

    def showPage(self) -> None:
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for state in self._pages:
            self.__dict__.update(state)
            self.setFont(FONT, 7.5)
            text = self._page_of.format(page=self._pageNumber, pages=total)
            self.drawCentredString(A4[0] / 2, 13 * mm, text)
            super().showPage()
        super().save()


def render_baseline_pdf(statement: Statement) -> bytes:
    language = language_of(statement.client.language)
    labels = labels_for(language)
    styles = _styles()
    buffer = BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=21 * mm,
        title=f"{labels.title} {statement.period}",
        author=statement.company.name,
    )

    story: list[Any] = [
        Paragraph(labels.title, styles["title"]),
        Paragraph(
            f"{labels.period}: {format_period(statement.period, language)}",
            styles["body"],
        ),
        Spacer(1, 4 * mm),
        _parties(statement, labels, styles),
        Spacer(1, 5 * mm),
        _documents_table(statement, language, labels, styles),
    ]
    for total in statement.totals:
        rows = [
            [labels.total, "", "", *_amounts(total, language)],
            *(
                [
                    labels.vat_at_rate.format(rate=format_rate(line.rate, language)),
                    "",
                    "",
                    format_amount(line.net, language),
                    format_amount(line.vat, language),
                    "",
                    total.currency,
                ]
                for line in total.by_rate
            ),
        ]
        story.append(Table(rows, colWidths=WIDTHS, style=_totals_style(len(rows))))

    def canvas_maker(*args: Any, **kwargs: Any) -> NumberedCanvas:
        return NumberedCanvas(*args, page_of=labels.page_of, **kwargs)

    document.build(story, canvasmaker=canvas_maker)
    return buffer.getvalue()


def _styles() -> dict[str, ParagraphStyle]:
    return {
        "title": ParagraphStyle("title", fontName=BOLD, fontSize=15, leading=19),
        "body": ParagraphStyle("body", fontName=FONT, fontSize=10, leading=13),
        "caption": ParagraphStyle(
            "caption", fontName=FONT, fontSize=7.5, leading=9, textColor=colors.gray
        ),
        "name": ParagraphStyle("name", fontName=BOLD, fontSize=10, leading=13),
        "detail": ParagraphStyle("detail", fontName=FONT, fontSize=9, leading=11),
        "cell": ParagraphStyle("cell", fontName=FONT, fontSize=8, leading=9.6),
        "heading": ParagraphStyle("heading", fontName=BOLD, fontSize=8, leading=9.6),
    }


def _parties(statement: Statement, labels: Any, styles: dict[str, Any]) -> Table:
    company, client = statement.company, statement.client
    seller = [
        Paragraph(labels.seller.upper(), styles["caption"]),
        Paragraph(company.name, styles["name"]),
        Paragraph(f"{labels.company_code}: {company.code}", styles["detail"]),
        Paragraph(f"{labels.vat_code}: {company.vat_code}", styles["detail"]),
        Paragraph(company.address, styles["detail"]),
    ]
    details = [f"{labels.client_code}: {client.code}"]
    if client.registration_code:
        details.append(f"{labels.company_code}: {client.registration_code}")
    if client.vat_code:
        details.append(f"{labels.vat_code}: {client.vat_code}")
    details.append(client.address)
    buyer = [
        Paragraph(labels.client.upper(), styles["caption"]),
        Paragraph(client.name, styles["name"]),
        *(Paragraph(text, styles["detail"]) for text in details if text),
    ]
    return Table([[seller, buyer]], colWidths=[87 * mm, 87 * mm])


def _documents_table(
    statement: Statement, language: str, labels: Any, styles: dict[str, Any]
) -> Table:
    headings = [
        labels.number,
        labels.date,
        labels.type,
        labels.net,
        labels.vat,
        labels.gross,
        labels.currency,
    ]
    rows: list[list[Any]] = [[Paragraph(text, styles["heading"]) for text in headings]]
    for row in statement.rows:
        rows.append(
            [
                # The number can be long, so it wraps like fpdf's side wraps it.
                Paragraph(row.number, styles["cell"]),
                format_date(row.date, language),
                document_type_label(row.type, language),
                format_amount(row.net, language),
                format_amount(row.vat, language),
                format_amount(row.gross, language),
                row.currency,
            ]
        )
    if not statement.rows:
        rows.append([labels.no_documents, "", "", "", "", "", ""])
    style = TableStyle(
        [
            ("FONT", (0, 0), (-1, -1), FONT, 8),
            ("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.9, 0.9, 0.9)),
            ("ALIGN", (3, 0), (5, -1), "RIGHT"),
            ("LINEBELOW", (0, 0), (-1, -1), 0.2 * mm, colors.Color(0.78, 0.78, 0.78)),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ]
    )
    return Table(rows, colWidths=WIDTHS, repeatRows=1, style=style)


def _amounts(total: Any, language: str) -> list[str]:
    return [
        format_amount(total.net, language),
        format_amount(total.vat, language),
        format_amount(total.gross, language),
        total.currency,
    ]


def _totals_style(rows: int) -> TableStyle:
    spans = [("SPAN", (0, row), (2, row)) for row in range(rows)]
    return TableStyle(
        [
            ("FONT", (0, 0), (-1, -1), FONT, 8),
            ("FONT", (0, 0), (-1, 0), BOLD, 8),
            *spans,
            ("ALIGN", (0, 0), (5, -1), "RIGHT"),
            ("LINEBELOW", (0, 0), (-1, -1), 0.2 * mm, colors.Color(0.78, 0.78, 0.78)),
        ]
    )
