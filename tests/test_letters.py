"""The statement e-mail's subject and body, rendered from the templates."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from services.letters import Letter, render_letter
from services.models import Document, DocumentLine, DocumentType
from services.periods import Period
from services.statements import Company, Recipient, Statement, build_statement

NBSP = "\u00a0"
COMPANY = Company(
    name="UAB „Šiaurės žuvėdra“",
    code="302123456",
    vat_code="LT100001234567",
    address="Gedimino pr. 1, LT-01103 Vilnius",
)


def make_document(
    number: str,
    gross: str,
    *,
    type: DocumentType = DocumentType.INVOICE,
    currency: str = "EUR",
) -> Document:
    total = Decimal(gross)
    net = (total / Decimal("1.21")).quantize(Decimal("0.01"))
    vat = total - net
    return Document(
        number=number,
        date=date(2026, 10, 15),
        type=type,
        currency=currency,
        net=net,
        vat=vat,
        gross=total,
        lines=[DocumentLine(vat_rate=Decimal("21"), net=net, vat=vat)],
    )


def make_statement(language: str, documents: list[Document]) -> Statement:
    client = Recipient(
        code="K-0001",
        name="UAB „Pavyzdžių prekyba“",
        address="Žalgirio g. 135, Vilnius",
        language=language,
    )
    return build_statement(COMPANY, client, Period(2026, 10), documents)


def render(language: str, documents: list[Document]) -> Letter:
    return render_letter(make_statement(language, documents), sender_name="Ona Onaitė")


def test_subject_lt_names_period_and_company() -> None:
    letter = render("lt", [make_document("SF-1", "121.00")])

    assert letter.subject == (
        "Sąskaitų sąrašas už 2026 m. spalio mėn. — UAB „Šiaurės žuvėdra“"
    )


def test_subject_en_names_period_and_company() -> None:
    letter = render("en", [make_document("SF-1", "121.00")])

    assert letter.subject == (
        "Statement of documents for October 2026 — UAB „Šiaurės žuvėdra“"
    )


def test_body_lt_shows_client_count_and_total() -> None:
    documents = [make_document("SF-1", "1000.00"), make_document("SF-2", "234.56")]

    body = render("lt", documents).body

    assert "UAB „Pavyzdžių prekyba“" in body
    assert "kliento kodas K-0001" in body
    assert "2026 m. spalio mėn." in body
    assert "Sąraše yra 2 dokumentai." in body
    assert f"Dokumentų suma: 1{NBSP}234,56{NBSP}€\n" in body
    assert "Ona Onaitė\nUAB „Šiaurės žuvėdra“\n" in body


def test_body_en_shows_client_count_and_total() -> None:
    body = render("en", [make_document("SF-1", "1234.56")]).body

    assert "UAB „Pavyzdžių prekyba“ (client code K-0001)" in body
    assert "in October 2026" in body
    assert "It lists 1 document." in body
    assert "Total of the documents: €1,234.56\n" in body
    assert body.startswith("Hello,\n")


def test_body_ends_with_one_newline() -> None:
    body = render("lt", [make_document("SF-1", "10.00")]).body

    assert body.endswith("UAB „Šiaurės žuvėdra“\n")
    assert not body.endswith("\n\n")


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        pytest.param(1, "Sąraše yra 1 dokumentas.", id="one"),
        pytest.param(3, "Sąraše yra 3 dokumentai.", id="few"),
        pytest.param(12, "Sąraše yra 12 dokumentų.", id="teens"),
        pytest.param(20, "Sąraše yra 20 dokumentų.", id="tens"),
        pytest.param(21, "Sąraše yra 21 dokumentas.", id="twenty-one"),
    ],
)
def test_body_lt_document_count_plural(count: int, expected: str) -> None:
    documents = [make_document(f"SF-{index}", "1.00") for index in range(count)]

    body = render("lt", documents).body

    assert expected in body


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        pytest.param("lt", f"Kredito likutis jūsų naudai: 120,00{NBSP}€\n", id="lt"),
        pytest.param("en", "Credit in your favour: €120.00\n", id="en"),
    ],
)
def test_body_credit_note_only_reads_as_credit(language: str, expected: str) -> None:
    credit = make_document("KS-1", "-120.00", type=DocumentType.CREDIT_NOTE)

    body = render(language, [credit]).body

    assert expected in body
    assert "-120" not in body


def test_body_two_currencies_give_two_totals() -> None:
    documents = [
        make_document("SF-1", "100.00", currency="EUR"),
        make_document("SF-2", "250.00", currency="USD"),
        make_document("KS-3", "-30.00", type=DocumentType.CREDIT_NOTE, currency="USD"),
    ]

    body = render("lt", documents).body

    assert "Dokumentų sumos pagal valiutą:\n" in body
    assert f"– EUR: 100,00{NBSP}€\n" in body
    assert f"– USD: 220,00{NBSP}USD\n" in body
    assert "Dokumentų suma:" not in body


def test_body_two_currencies_with_a_credit_en() -> None:
    documents = [
        make_document("SF-1", "100.00", currency="EUR"),
        make_document("KS-2", "-40.00", type=DocumentType.CREDIT_NOTE, currency="USD"),
    ]

    body = render("en", documents).body

    assert "– EUR: €100.00\n" in body
    assert "– USD: credit in your favour US$40.00\n" in body


def test_unknown_language_uses_english() -> None:
    letter = render("de", [make_document("SF-1", "10.00")])

    assert letter.subject.startswith("Statement of documents for October 2026")
    assert letter.body.startswith("Hello,\n")


def test_empty_sender_name_signs_with_company() -> None:
    statement = make_statement("lt", [make_document("SF-1", "10.00")])

    body = render_letter(statement, sender_name="  ").body

    assert body.endswith("Pagarbiai\nUAB „Šiaurės žuvėdra“\n")


def test_subject_stays_on_one_line() -> None:
    statement = make_statement("lt", [make_document("SF-1", "10.00")])
    company = Company(
        name="UAB\n„Dvi eilutės“", code="1", vat_code="LT1", address="Vilnius"
    )
    statement = Statement(
        company=company,
        client=statement.client,
        period=statement.period,
        rows=statement.rows,
        totals=statement.totals,
    )

    subject = render_letter(statement, sender_name="").subject

    assert "\n" not in subject
    assert subject.endswith("— UAB „Dvi eilutės“")
