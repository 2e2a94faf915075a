"""Documents and clients as read from an input file, before they are stored."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from services.models import DocumentStatus, DocumentType

_AMOUNT = re.compile(r"^-?\d{1,16}(\.\d{1,2})?$")
_RATE = re.compile(r"^\d{1,4}(\.\d{1,3})?$")

# Line breaks and tabs, with the spaces around them, become one space.
_BREAKS = re.compile(r" *[\t\n\r\v\f\x1c-\x1f\x85\u2028\u2029]+ *")

AMOUNT_EXPECTED = (
    "a number with at most 2 decimals and a '.' separator, such as 1234.50"
)
RATE_EXPECTED = "a VAT percentage with at most 3 decimals, such as 21 or 5.5"


@dataclass(slots=True)
class ParsedLine:
    """The part of a document at one VAT rate."""

    vat_rate: Decimal
    tax_code: str
    net: Decimal
    vat: Decimal


@dataclass(slots=True)
class ParsedClient:
    """A client as a document file names it; empty fields are unknown."""

    code: str
    name: str
    registration_code: str = ""
    vat_code: str = ""
    country: str = ""
    # The file and place that first named the client, for messages about it.
    file: str = ""
    location: str = ""


@dataclass(slots=True)
class ParsedDocument:
    """One document ready to store, with amounts already signed for its type."""

    number: str
    client_code: str
    date: date
    type: DocumentType
    status: DocumentStatus
    currency: str
    net: Decimal
    vat: Decimal
    gross: Decimal
    lines: list[ParsedLine]
    source_type: str
    source_file: str
    # Where the document is in its file, for messages about it.
    location: str
    # The column or element that holds the number, for messages about it.
    number_field: str = "number"
    fingerprint: str = field(default="")

    def __post_init__(self) -> None:
        if self.type == DocumentType.CREDIT_NOTE:
            _make_negative(self)
        self.fingerprint = document_fingerprint(self)


def _make_negative(document: ParsedDocument) -> None:
    """Store a credit note as a reduction whatever sign the source used."""
    document.net = -abs(document.net)
    document.vat = -abs(document.vat)
    document.gross = -abs(document.gross)
    for line in document.lines:
        line.net = -abs(line.net)
        line.vat = -abs(line.vat)


def clean_text(text: str) -> str:
    """Return `text` on one line, as a PDF and a message can print it.

    Tabs and line breaks become single spaces, other control characters are
    removed, and the ends are stripped. No-break spaces stay as they are.
    """
    spaced = _BREAKS.sub(" ", text)
    if spaced.isprintable():
        return spaced.strip()
    kept = (char for char in spaced if unicodedata.category(char) != "Cc")
    return "".join(kept).strip()


def parse_amount(text: str) -> Decimal | None:
    """Parse an amount with at most 2 decimals, or return None when invalid."""
    value = text.strip()
    if not _AMOUNT.match(value):
        return None
    return Decimal(value).quantize(Decimal("0.01"))


def parse_rate(text: str) -> Decimal | None:
    """Parse a non-negative VAT percentage, or return None when invalid."""
    value = text.strip()
    if not _RATE.match(value):
        return None
    return Decimal(value)


def _canonical(value: Decimal) -> str:
    """Write a number so that 21, 21.0 and 21.000 give the same text."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def document_fingerprint(document: ParsedDocument) -> str:
    """Digest every stored field of a document and its lines."""
    parts = [
        document.number,
        document.client_code,
        document.date.isoformat(),
        document.type.value,
        document.status.value,
        document.currency,
        _canonical(document.net),
        _canonical(document.vat),
        _canonical(document.gross),
    ]
    for line in document.lines:
        parts += [
            _canonical(line.vat_rate),
            line.tax_code,
            _canonical(line.net),
            _canonical(line.vat),
        ]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
