"""The statement PDF: its text, pages, wrapping, fonts and attachment name."""

from __future__ import annotations

import functools
import io
import re
from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
from fpdf import FPDF
from pypdf import PdfReader

from services.formatting import format_amount
from services.models import DocumentType
from services.pdf import attachment_filename, render_statement_pdf
from services.pdf.columns import AMOUNT_COLUMNS, FONT_SIZE, table_columns
from services.pdf.fonts import FONT_FILES, FONTS_DIR
from services.periods import Period
from services.statements import (
    Company,
    CurrencyTotal,
    Recipient,
    Statement,
    StatementRow,
    VatLine,
)

NBSP = "\u00a0"
A4_WIDTH_PT = 595.28
MARGIN_PT = 15 * 72 / 25.4
LITHUANIAN_LETTERS = "ąčęėįšųūž ĄČĘĖĮŠŲŪŽ"

COMPANY = Company(
    name="UAB „Šiaurės žuvėdra“",
    code="302123456",
    vat_code="LT100001234567",
    address="Gedimino pr. 1, LT-01103 Vilnius",
)


def make_row(index: int, *, currency: str = "EUR") -> StatementRow:
    credit = index % 5 == 4
    sign = Decimal(-1) if credit else Decimal(1)
    return StatementRow(
        number=f"SF-2026-{index:05d}",
        date=date(2026, 10, index % 28 + 1),
        type=DocumentType.CREDIT_NOTE if credit else DocumentType.INVOICE,
        net=sign * Decimal("1000.00"),
        vat=sign * Decimal("210.00"),
        gross=sign * Decimal("1210.00"),
        currency=currency,
    )


def totals_of(rows: list[StatementRow]) -> tuple[CurrencyTotal, ...]:
    totals = []
    for currency in sorted({row.currency for row in rows}):
        chosen = [row for row in rows if row.currency == currency]
        net = sum((row.net for row in chosen), Decimal("0.00"))
        vat = sum((row.vat for row in chosen), Decimal("0.00"))
        gross = sum((row.gross for row in chosen), Decimal("0.00"))
        lines = (VatLine(rate=Decimal("21"), net=net, vat=vat),)
        totals.append(CurrencyTotal(currency, net, vat, gross, lines))
    return tuple(totals)


def make_statement(
    count: int = 20,
    *,
    language: str = "lt",
    name: str = "UAB „Pavyzdžių prekyba“",
    address: str = "Žalgirio g. 135, LT-08217 Vilnius",
    rows: list[StatementRow] | None = None,
) -> Statement:
    chosen = rows if rows is not None else [make_row(index) for index in range(count)]
    client = Recipient(
        code="K-0001",
        name=name,
        address=address,
        language=language,
        registration_code="123456789",
        vat_code="LT123456789",
    )
    return Statement(
        company=COMPANY,
        client=client,
        period=Period(2026, 10),
        rows=tuple(chosen),
        totals=totals_of(chosen),
    )


def read(statement: Statement) -> PdfReader:
    return PdfReader(io.BytesIO(render_statement_pdf(statement)))


def page_texts(statement: Statement) -> list[str]:
    return [page.extract_text() for page in read(statement).pages]


def test_pdf_is_a4_portrait() -> None:
    reader = read(make_statement(3))

    box = reader.pages[0].mediabox
    assert render_statement_pdf(make_statement(3)).startswith(b"%PDF-")
    assert float(box.width) == pytest.approx(A4_WIDTH_PT, abs=0.1)
    assert float(box.height) == pytest.approx(841.89, abs=0.1)


def test_pdf_client_name_has_lithuanian_letters() -> None:
    name = "UAB „Žąsų ūkis“ – Čiūrlionio įmonė"

    text = "\n".join(page_texts(make_statement(3, name=name)))

    assert name in text


def test_pdf_prints_every_lithuanian_letter_and_sign() -> None:
    address = f"{LITHUANIAN_LETTERS} € — – „kabutės“"

    text = "\n".join(page_texts(make_statement(2, address=address)))

    assert address in text


def test_pdf_shows_company_and_client_details() -> None:
    text = "\n".join(page_texts(make_statement(2)))

    assert "Sąskaitų sąrašas" in text
    assert "Laikotarpis: 2026 m. spalis" in text
    assert "UAB „Šiaurės žuvėdra“" in text
    assert "Įmonės kodas: 302123456" in text
    assert "PVM mokėtojo kodas: LT100001234567" in text
    assert "Gedimino pr. 1, LT-01103 Vilnius" in text
    assert "Kliento kodas: K-0001" in text
    assert "Žalgirio g. 135, LT-08217 Vilnius" in text


def test_pdf_lists_every_document_once() -> None:
    statement = make_statement(20)

    text = "\n".join(page_texts(statement))

    for row in statement.rows:
        assert len(re.findall(rf"{row.number}(?!\d)", text)) == 1, row.number


def test_pdf_rows_show_date_type_and_amounts_lt() -> None:
    text = "\n".join(page_texts(make_statement(5)))

    assert f"SF-2026-00000 2026-10-01 PVM sąskaita faktūra 1{NBSP}000,00" in text
    assert f"SF-2026-00004 2026-10-05 Kreditinė sąskaita -1{NBSP}000,00" in text
    assert f"-210,00 -1{NBSP}210,00 EUR" in text


def test_pdf_rows_show_date_type_and_amounts_en() -> None:
    text = "\n".join(page_texts(make_statement(5, language="en")))

    assert "SF-2026-00000 1 Oct 2026 Invoice 1,000.00 210.00 1,210.00 EUR" in text
    assert "SF-2026-00004 5 Oct 2026 Credit note -1,000.00 -210.00 -1,210.00" in text


@pytest.mark.parametrize(
    ("language", "total_line", "vat_line"),
    [
        pytest.param(
            "lt",
            f"Iš viso 12{NBSP}000,00 2{NBSP}520,00 14{NBSP}520,00 EUR",
            f"PVM 21{NBSP}% 12{NBSP}000,00 2{NBSP}520,00 EUR",
            id="lt",
        ),
        pytest.param(
            "en",
            "Total 12,000.00 2,520.00 14,520.00 EUR",
            "VAT 21% 12,000.00 2,520.00 EUR",
            id="en",
        ),
    ],
)
def test_pdf_totals_in_client_format(
    language: str, total_line: str, vat_line: str
) -> None:
    text = page_texts(make_statement(20, language=language))[-1]

    assert total_line in text
    assert vat_line in text


def test_pdf_totals_per_currency() -> None:
    rows = [make_row(0, currency="EUR"), make_row(1, currency="USD")]
    rows.append(make_row(2, currency="USD"))

    text = "\n".join(page_texts(make_statement(rows=rows, language="en")))

    assert "Total 1,000.00 210.00 1,210.00 EUR" in text
    assert "Total 2,000.00 420.00 2,420.00 USD" in text
    assert text.count("VAT 21%") == 2


def test_pdf_credit_note_only_total_is_negative() -> None:
    statement = make_statement(rows=[make_row(4)])

    text = page_texts(statement)[-1]

    assert f"Iš viso -1{NBSP}000,00 -210,00 -1{NBSP}210,00 EUR" in text


@pytest.mark.parametrize(
    ("language", "headings", "footer"),
    [
        pytest.param(
            "lt",
            "Numeris Data Tipas Suma be PVM PVM Suma su PVM Valiuta",
            "Puslapis {page} iš {pages}",
            id="lt",
        ),
        pytest.param(
            "en",
            "Number Date Type Net VAT Gross Currency",
            "Page {page} of {pages}",
            id="en",
        ),
    ],
)
def test_pdf_long_statement_repeats_headings(
    language: str, headings: str, footer: str
) -> None:
    statement = make_statement(85, language=language)

    texts = page_texts(statement)

    assert len(texts) >= 3
    for page, text in enumerate(texts, start=1):
        assert headings in text, f"page {page}"
        assert footer.format(page=page, pages=len(texts)) in text, f"page {page}"
    everything = "\n".join(texts)
    for row in statement.rows:
        assert len(re.findall(rf"{row.number}(?!\d)", everything)) == 1, row.number


def test_pdf_short_statement_is_one_page() -> None:
    texts = page_texts(make_statement(20))

    assert len(texts) == 1
    assert "Puslapis 1 iš 1" in texts[0]


def test_pdf_without_documents_says_so() -> None:
    text = page_texts(make_statement(rows=[]))[0]

    assert "Šiuo laikotarpiu dokumentų nėra." in text


LONG_NAME = ("UAB „Labai ilgo pavadinimo Žemaitijos ūkininkų kooperatyvas " * 4)[:199]
LONG_ADDRESS = (
    "Kęstučio g. 1000, Šiaulių rajono savivaldybė, " * 4 + "LT-00000 Šiauliai"
)
LONG_NUMBER = "SF-" + "Ž" * 20 + "-" + "9" * 40


def wide_statement() -> Statement:
    rows = [replace(make_row(0), number=LONG_NUMBER), make_row(1)]
    return make_statement(
        rows=rows, name=LONG_NAME + "“", address=LONG_ADDRESS, language="lt"
    )


def test_pdf_long_texts_keep_every_word() -> None:
    text = " ".join(page_texts(wide_statement()))
    flat = " ".join(text.split())

    for word in (LONG_NAME + "“").split() + LONG_ADDRESS.split():
        assert word in flat
    assert LONG_NUMBER in text.replace("\n", "")
    assert LONG_NUMBER not in text


def test_pdf_long_texts_stay_inside_printable_width() -> None:
    fragments = text_fragments(render_statement_pdf(wide_statement()))

    assert fragments
    assert len(fragments) > len(wide_statement().rows) * 7
    for text, left, right in fragments:
        assert left >= MARGIN_PT - 0.5, text
        assert right <= A4_WIDTH_PT - MARGIN_PT + 0.5, text


def test_pdf_long_client_name_wraps_to_several_lines() -> None:
    fragments = text_fragments(render_statement_pdf(wide_statement()))

    name_words = set(LONG_NAME.split())
    lines = [text for text, _, _ in fragments if set(text.split()) <= name_words]
    assert len(lines) >= 3


def test_pdf_prints_letters_outside_the_cut_font() -> None:
    name = "ООО „Ромашка“ Ελληνικά"

    text = "\n".join(page_texts(make_statement(2, name=name)))

    assert name in text


def test_pdf_fonts_share_no_state_between_pdfs() -> None:
    plain = make_statement(3, name="UAB Paprastas")
    before = render_statement_pdf(plain)

    render_statement_pdf(make_statement(3, name="ŸÆŒ ĦĲĿ ŊŦ Øß"))
    after = render_statement_pdf(plain)

    assert len(after) == len(before)
    assert "UAB Paprastas" in PdfReader(io.BytesIO(after)).pages[0].extract_text()


@functools.cache
def measuring_pdf() -> FPDF:
    pdf = FPDF()
    for style, filename in FONT_FILES.items():
        pdf.add_font("measure", style, FONTS_DIR / filename)
    return pdf


def text_fragments(data: bytes) -> list[tuple[str, float, float]]:
    """Return every shown string with its left and right edge, in points."""
    pdf = measuring_pdf()
    fragments: list[tuple[str, float, float]] = []

    def visit(text, cm, tm, font_dict, font_size):  # type: ignore[no-untyped-def]
        if not text.strip() or font_dict is None:
            return
        style = "B" if "Bold" in str(font_dict["/BaseFont"]) else ""
        pdf.set_font("measure", style, font_size)
        left = tm[4] * cm[0] + cm[4]
        width_pt = pdf.get_string_width(text) * pdf.k
        fragments.append((text, left, left + width_pt))

    for page in PdfReader(io.BytesIO(data)).pages:
        page.extract_text(visitor_text=visit)
    return fragments


def test_attachment_filename_lt() -> None:
    name = attachment_filename(make_statement(1))

    assert name == "saskaitu-sarasas_2026-10_K-0001_UAB-Pavyzdziu-prekyba.pdf"


def test_attachment_filename_en() -> None:
    name = attachment_filename(make_statement(1, language="en"))

    assert name == "statement_2026-10_K-0001_UAB-Pavyzdziu-prekyba.pdf"


@pytest.mark.parametrize(
    "client_name",
    [
        pytest.param("UAB „Žąsų ūkis“ / Čiūrlionio g.", id="lithuanian"),
        pytest.param('A:B*C?"D<E>F|G\\H', id="reserved-characters"),
        pytest.param("ООО Ромашка", id="cyrillic"),
        pytest.param("Ū" * 300, id="very-long"),
        pytest.param("„“", id="nothing-left"),
    ],
)
def test_attachment_filename_is_safe_ascii(client_name: str) -> None:
    name = attachment_filename(make_statement(1, name=client_name))

    assert name.isascii()
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.pdf", name), name
    assert len(name) <= 100
    assert name.startswith("saskaitu-sarasas_2026-10_K-0001")


def test_attachment_filename_transliterates_client() -> None:
    name = attachment_filename(make_statement(1, name="UAB „Žąsų ūkis“"))

    assert name.endswith("_UAB-Zasu-ukis.pdf")


def test_attachment_filename_cyrillic_client() -> None:
    name = attachment_filename(make_statement(1, name="ООО Ромашка"))

    assert name.endswith("_OOO-Romashka.pdf")


def large_rows(gross: str, count: int = 121) -> list[StatementRow]:
    amount = Decimal(gross)
    vat = (amount * Decimal("21") / Decimal("121")).quantize(Decimal("0.01"))
    return [
        replace(make_row(index), net=amount - vat, vat=vat, gross=amount)
        for index in range(count)
    ]


@pytest.mark.parametrize("language", ["lt", "en"], ids=["lt", "en"])
@pytest.mark.parametrize(
    "gross",
    ["99999999.99", "-11207145.08", "9999999999999999.99"],
    ids=["99-million", "negative-11-million", "16-digits"],
)
def test_pdf_amounts_never_wrap(language: str, gross: str) -> None:
    statement = make_statement(rows=large_rows(gross), language=language)
    [total] = statement.totals

    fragments = text_fragments(render_statement_pdf(statement))

    shown = {text.strip() for text, _, _ in fragments}
    [line] = total.by_rate
    [row, *_] = statement.rows
    amounts = [total.net, total.vat, total.gross, line.net, line.vat]
    for amount in [*amounts, row.net, row.vat, row.gross]:
        assert format_amount(amount, language) in shown, amount
    for text, left, right in fragments:
        assert left >= MARGIN_PT - 0.5, text
        assert right <= A4_WIDTH_PT - MARGIN_PT + 0.5, text


@pytest.mark.parametrize(
    ("amounts", "shrunk"),
    [
        pytest.param((15.0, 12.0, 15.0), False, id="usual"),
        pytest.param((30.0, 28.0, 30.0), False, id="wide"),
        pytest.param((45.0, 40.0, 45.0), True, id="too-wide"),
    ],
)
def test_table_columns_fit_widest_amount(
    amounts: tuple[float, float, float], shrunk: bool
) -> None:
    columns = table_columns(amounts, date=15.0)

    assert sum(column.width for column in columns) == pytest.approx(180.0)
    assert columns[1].width >= 15.0 + 2
    for index, text_width in zip(AMOUNT_COLUMNS, amounts, strict=True):
        size = columns[index].size or FONT_SIZE
        assert text_width * size / FONT_SIZE <= columns[index].width - 2, index
    assert (columns[3].size is not None) == shrunk


def test_pdf_long_number_breaks_after_hyphen() -> None:
    number = "PVM-2026-LONG-NUMBER-000030-ŠĄĘ"
    rows = [replace(make_row(0), number=number)]

    fragments = text_fragments(render_statement_pdf(make_statement(rows=rows)))

    pieces = [text for text, _, _ in fragments if text in number]
    assert "".join(pieces) == number
    assert len(pieces) > 1
    assert all(piece.endswith("-") for piece in pieces[:-1]), pieces
