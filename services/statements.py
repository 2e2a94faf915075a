"""A client's statement for a period: the rows and totals the PDF and letter show."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.models import Client, Document, DocumentStatus, DocumentType
from services.periods import Period

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class Company:
    """The sender printed at the top of every statement."""

    name: str
    code: str
    vat_code: str
    address: str


@dataclass(frozen=True)
class Recipient:
    """The client as the statement shows it."""

    code: str
    name: str
    address: str
    language: str
    registration_code: str = ""
    vat_code: str = ""


@dataclass(frozen=True)
class StatementRow:
    number: str
    date: date
    type: DocumentType
    net: Decimal
    vat: Decimal
    gross: Decimal
    currency: str


@dataclass(frozen=True)
class VatLine:
    """The net and VAT at one rate within one currency."""

    rate: Decimal
    net: Decimal
    vat: Decimal


@dataclass(frozen=True)
class CurrencyTotal:
    currency: str
    net: Decimal
    vat: Decimal
    gross: Decimal
    by_rate: tuple[VatLine, ...]


@dataclass(frozen=True)
class Statement:
    company: Company
    client: Recipient
    period: Period
    rows: tuple[StatementRow, ...]
    totals: tuple[CurrencyTotal, ...]

    @property
    def document_count(self) -> int:
        return len(self.rows)

    def gross_by_currency(self) -> dict[str, str]:
        return {total.currency: str(total.gross) for total in self.totals}


def recipient_of(client: Client) -> Recipient:
    return Recipient(
        code=client.code,
        name=client.name,
        address=client.address,
        language=client.language,
        registration_code=client.registration_code,
        vat_code=client.vat_code,
    )


def build_statement(
    company: Company, client: Recipient, period: Period, documents: Iterable[Document]
) -> Statement:
    """Build the statement from posted documents, sorted by date and number.

    Totals are sums of the rows as printed; the VAT breakdown sums the
    documents' per-rate lines, so nothing is recomputed from a rate.
    """
    ordered = sorted(documents, key=lambda doc: (doc.date, doc.number))
    rows = tuple(
        StatementRow(
            number=doc.number,
            date=doc.date,
            type=doc.type,
            net=doc.net,
            vat=doc.vat,
            gross=doc.gross,
            currency=doc.currency,
        )
        for doc in ordered
    )
    return Statement(
        company=company,
        client=client,
        period=period,
        rows=rows,
        totals=_totals(ordered),
    )


def _totals(documents: list[Document]) -> tuple[CurrencyTotal, ...]:
    sums: dict[str, list[Decimal]] = {}
    rates: dict[str, dict[Decimal, list[Decimal]]] = {}
    for doc in documents:
        net, vat, gross = sums.setdefault(doc.currency, [ZERO, ZERO, ZERO])
        sums[doc.currency] = [net + doc.net, vat + doc.vat, gross + doc.gross]
        by_rate = rates.setdefault(doc.currency, {})
        for line in doc.lines:
            rate_net, rate_vat = by_rate.setdefault(line.vat_rate, [ZERO, ZERO])
            by_rate[line.vat_rate] = [rate_net + line.net, rate_vat + line.vat]

    totals = []
    for currency in sorted(sums):
        net, vat, gross = sums[currency]
        lines = tuple(
            VatLine(rate=rate, net=values[0], vat=values[1])
            for rate, values in sorted(rates[currency].items(), reverse=True)
        )
        totals.append(CurrencyTotal(currency, net, vat, gross, lines))
    return tuple(totals)


class Fingerprinted(Protocol):
    """The two fields of a document that its digest reads: a `Document` or a row."""

    @property
    def number(self) -> str: ...

    @property
    def fingerprint(self) -> str: ...


def documents_fingerprint(documents: Iterable[Fingerprinted]) -> str:
    """Digest the documents a statement is made from, to tell when they change."""
    digest = hashlib.sha256()
    for number, fingerprint in sorted(
        (doc.number, doc.fingerprint) for doc in documents
    ):
        digest.update(f"{number}\x1f{fingerprint}\x1e".encode())
    return digest.hexdigest()


def current_fingerprints(
    session: Session, period: Period, client_ids: Any
) -> defaultdict[int, str]:
    """Digest each client's posted documents in the period, as generation does.

    Plain rows instead of ORM objects keep this fast for a month of tens of
    thousands of documents.
    """
    grouped: defaultdict[int, list[Fingerprinted]] = defaultdict(list)
    rows = session.execute(
        select(Document.client_id, Document.number, Document.fingerprint).where(
            Document.client_id.in_(client_ids),
            Document.status == DocumentStatus.POSTED,
            Document.date >= period.start,
            Document.date < period.end,
        )
    )
    for row in rows:
        grouped[row.client_id].append(row)
    empty = documents_fingerprint([])
    fingerprints: defaultdict[int, str] = defaultdict(lambda: empty)
    for client_id, client_documents in grouped.items():
        fingerprints[client_id] = documents_fingerprint(client_documents)
    return fingerprints
