"""Money, dates, periods and labels in Lithuanian and English."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from services.formatting import (
    document_type_label,
    format_amount,
    format_date,
    format_money,
    format_period,
    format_period_reference,
    format_rate,
)
from services.models import DocumentType
from services.periods import Period

NBSP = "\u00a0"


@pytest.mark.parametrize(
    ("amount", "language", "expected"),
    [
        pytest.param("1234.56", "lt", f"1{NBSP}234,56", id="lt-thousands"),
        pytest.param("1234.56", "en", "1,234.56", id="en-thousands"),
        pytest.param("-1234.56", "lt", f"-1{NBSP}234,56", id="lt-negative"),
        pytest.param("-1234.56", "en", "-1,234.56", id="en-negative"),
        pytest.param("0", "lt", "0,00", id="lt-zero"),
        pytest.param("-0.00", "en", "0.00", id="en-negative-zero"),
        pytest.param("1234567.8", "lt", f"1{NBSP}234{NBSP}567,80", id="lt-millions"),
        pytest.param("0.01", "en", "0.01", id="en-one-cent"),
        pytest.param("12.345", "lt", "12,345", id="lt-extra-decimals-kept"),
        pytest.param("999.99", "xx", "999.99", id="unknown-language-is-en"),
    ],
)
def test_format_amount(amount: str, language: str, expected: str) -> None:
    assert format_amount(Decimal(amount), language) == expected


@pytest.mark.parametrize(
    ("amount", "currency", "language", "expected"),
    [
        pytest.param("1234.56", "EUR", "lt", f"1{NBSP}234,56{NBSP}€", id="lt-eur"),
        pytest.param("1234.56", "EUR", "en", "€1,234.56", id="en-eur"),
        pytest.param("-120", "EUR", "lt", f"-120,00{NBSP}€", id="lt-negative"),
        pytest.param("-120", "EUR", "en", "-€120.00", id="en-negative"),
        pytest.param("0.00", "EUR", "lt", f"0,00{NBSP}€", id="lt-zero"),
        pytest.param("1000", "USD", "lt", f"1{NBSP}000,00{NBSP}USD", id="lt-usd"),
        pytest.param("1000", "GBP", "en", "£1,000.00", id="en-gbp"),
        pytest.param("0.10", "EUR", "en", "€0.10", id="en-ten-cents"),
    ],
)
def test_format_money(amount: str, currency: str, language: str, expected: str) -> None:
    assert format_money(Decimal(amount), currency, language) == expected


def test_format_money_has_no_narrow_space() -> None:
    text = format_money(Decimal("1234567.89"), "EUR", "lt")

    assert "\u202f" not in text
    assert text == f"1{NBSP}234{NBSP}567,89{NBSP}€"


@pytest.mark.parametrize(
    ("day", "language", "expected"),
    [
        pytest.param(date(2026, 11, 30), "lt", "2026-11-30", id="lt"),
        pytest.param(date(2026, 11, 30), "en", "30 Nov 2026", id="en"),
        pytest.param(date(2026, 1, 5), "lt", "2026-01-05", id="lt-padded"),
        pytest.param(date(2026, 1, 5), "de", "5 Jan 2026", id="unknown-is-en"),
    ],
)
def test_format_date(day: date, language: str, expected: str) -> None:
    assert format_date(day, language) == expected


@pytest.mark.parametrize(
    ("period", "language", "expected"),
    [
        pytest.param(Period(2026, 11), "lt", "2026 m. lapkritis", id="lt-november"),
        pytest.param(Period(2026, 10), "lt", "2026 m. spalis", id="lt-october"),
        pytest.param(Period(2026, 11), "en", "November 2026", id="en-november"),
        pytest.param(Period(2027, 1), "en", "January 2027", id="en-january"),
    ],
)
def test_format_period(period: Period, language: str, expected: str) -> None:
    assert format_period(period, language) == expected


@pytest.mark.parametrize(
    ("period", "language", "expected"),
    [
        pytest.param(Period(2026, 10), "lt", "2026 m. spalio mėn.", id="lt-october"),
        pytest.param(Period(2026, 2), "lt", "2026 m. vasario mėn.", id="lt-february"),
        pytest.param(Period(2026, 10), "en", "October 2026", id="en-october"),
    ],
)
def test_format_period_reference(period: Period, language: str, expected: str) -> None:
    assert format_period_reference(period, language) == expected


@pytest.mark.parametrize(
    ("rate", "language", "expected"),
    [
        pytest.param("21", "lt", f"21{NBSP}%", id="lt-whole"),
        pytest.param("21", "en", "21%", id="en-whole"),
        pytest.param("5.5", "lt", f"5,5{NBSP}%", id="lt-fraction"),
        pytest.param("5.500", "en", "5.5%", id="en-trailing-zeros"),
        pytest.param("21.000", "lt", f"21{NBSP}%", id="lt-database-scale"),
        pytest.param("0", "lt", f"0{NBSP}%", id="lt-zero"),
    ],
)
def test_format_rate(rate: str, language: str, expected: str) -> None:
    assert format_rate(Decimal(rate), language) == expected


@pytest.mark.parametrize(
    ("document_type", "language", "expected"),
    [
        pytest.param(
            DocumentType.INVOICE, "lt", "PVM sąskaita faktūra", id="lt-invoice"
        ),
        pytest.param(
            DocumentType.CREDIT_NOTE, "lt", "Kreditinė sąskaita", id="lt-credit"
        ),
        pytest.param(DocumentType.DEBIT_NOTE, "lt", "Debetinė sąskaita", id="lt-debit"),
        pytest.param(DocumentType.INVOICE, "en", "Invoice", id="en-invoice"),
        pytest.param(DocumentType.CREDIT_NOTE, "en", "Credit note", id="en-credit"),
        pytest.param(DocumentType.DEBIT_NOTE, "EN", "Debit note", id="en-upper-case"),
    ],
)
def test_document_type_label(
    document_type: DocumentType, language: str, expected: str
) -> None:
    assert document_type_label(document_type, language) == expected
