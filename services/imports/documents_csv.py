"""Import documents from the CSV file that ERPs without i.SAF export."""

from __future__ import annotations

import logging
import re
from datetime import date, datetime, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

from sqlalchemy.orm import Session, sessionmaker

from services import audit
from services.db import transaction
from services.errors import ImportProblem, ImportRejectedError
from services.imports.csv_rows import CsvRow, read_rows
from services.imports.records import (
    AMOUNT_EXPECTED,
    RATE_EXPECTED,
    ParsedClient,
    ParsedDocument,
    ParsedLine,
    parse_amount,
    parse_rate,
)
from services.imports.report import ImportReport
from services.imports.store import store_documents
from services.models import DocumentStatus, DocumentType
from services.progress import Progress

logger = logging.getLogger(__name__)

COLUMNS = (
    "number",
    "client_code",
    "client_name",
    "date",
    "type",
    "net",
    "vat",
    "gross",
    "currency",
    "vat_rate",
    "status",
)
DATE_EXPECTED = (
    "a date as YYYY-MM-DD, or an ISO 8601 date-time with an offset such as "
    "2026-10-31T23:30:00+00:00"
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_TYPES = ", ".join(kind.value for kind in DocumentType)
_STATUSES = ", ".join(status.value for status in DocumentStatus)
ZERO = Decimal("0.00")

_Choice = TypeVar("_Choice", DocumentType, DocumentStatus)


def parse_document_date(text: str, zone: tzinfo) -> date | None:
    """Return the document date, or None when `text` is not a valid date.

    A date-time must carry an offset, and its date is the one in `zone`, so
    2026-10-31T23:30:00+00:00 is 2026-11-01 in Europe/Vilnius.
    """
    try:
        if _DATE.match(text):
            return date.fromisoformat(text)
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None or "T" not in text.upper():
        return None
    return moment.astimezone(zone).date()


class _RowReader:
    """Turn one CSV row into a `ParsedDocument`, collecting every problem."""

    def __init__(self, file: str, row: CsvRow) -> None:
        self.file = file
        self.row = row
        self.location = f"line {row.line}"
        self.problems: list[ImportProblem] = []

    def problem(self, column: str, value: str, expected: str) -> None:
        self.problems.append(
            ImportProblem(self.file, self.location, column, value, expected)
        )

    def text(self, column: str, expected: str, *, max_length: int) -> str:
        value = self.row[column]
        if not value and expected:
            self.problem(column, value, f"{expected}; the value is empty")
        elif len(value) > max_length:
            self.problem(column, value, f"at most {max_length} characters")
            return ""
        return value

    def amount(self, column: str) -> Decimal:
        value = parse_amount(self.row[column])
        if value is None:
            self.problem(column, self.row[column], AMOUNT_EXPECTED)
            return ZERO
        return value

    def choice(self, column: str, kind: type[_Choice], expected: str) -> _Choice | None:
        value = self.row[column]
        try:
            return kind(value)
        except ValueError:
            self.problem(column, value, f"one of {expected}")
            return None

    def rate(self, vat: Decimal) -> Decimal:
        """Return the VAT rate; it may be empty only on a line without VAT."""
        text = self.row["vat_rate"]
        if not text:
            if vat != 0:
                self.problem(
                    "vat_rate",
                    text,
                    f"{RATE_EXPECTED}; it may be empty only when vat is 0",
                )
            return Decimal(0)
        value = parse_rate(text)
        if value is None:
            self.problem("vat_rate", text, RATE_EXPECTED)
            return Decimal(0)
        return value

    def document(self, zone: tzinfo) -> tuple[ParsedDocument | None, ParsedClient]:
        number = self.text("number", "the document number", max_length=100)
        client = ParsedClient(
            code=self.text("client_code", "the client code", max_length=64),
            name=self.text("client_name", "", max_length=500),
            file=self.file,
            location=self.location,
        )
        day = parse_document_date(self.row["date"], zone)
        if day is None:
            self.problem("date", self.row["date"], DATE_EXPECTED)
        kind = self.choice("type", DocumentType, _TYPES)
        status = self.choice("status", DocumentStatus, _STATUSES)
        net, vat, gross = (self.amount(name) for name in ("net", "vat", "gross"))
        currency = self.row["currency"]
        if not _CURRENCY.match(currency):
            self.problem("currency", currency, "a 3-letter ISO 4217 code such as EUR")
        rate = self.rate(vat)
        if self.problems or day is None or kind is None or status is None:
            return None, client

        document = ParsedDocument(
            number=number,
            client_code=client.code,
            date=day,
            type=kind,
            status=status,
            currency=currency,
            net=net,
            vat=vat,
            gross=gross,
            lines=[ParsedLine(rate, "", net, vat)],
            source_type=kind.value,
            source_file=self.file,
            location=self.location,
        )
        return document, client


def _read_documents(
    path: Path, zone: tzinfo
) -> tuple[list[ParsedDocument], dict[str, ParsedClient], list[ImportProblem]]:
    file = path.name
    problems: list[ImportProblem] = []
    documents: dict[str, ParsedDocument] = {}
    clients: dict[str, ParsedClient] = {}
    for row in read_rows(path, COLUMNS, problems):
        reader = _RowReader(file, row)
        document, client = reader.document(zone)
        problems.extend(reader.problems)
        known = clients.get(client.code)
        if client.code and (known is None or not known.name):
            clients[client.code] = client
        if document is None:
            continue
        first = documents.setdefault(document.number, document)
        if first.fingerprint != document.fingerprint:
            problems.append(
                ImportProblem(
                    file,
                    reader.location,
                    "number",
                    document.number,
                    f"a number used once; it is also on {first.location} with "
                    "different values",
                )
            )
    return list(documents.values()), clients, problems


def import_documents_csv(
    factory: sessionmaker[Session],
    path: Path | str,
    *,
    zone: tzinfo,
    actor: str,
    progress: Progress | None = None,
) -> ImportReport:
    """Import a documents CSV file, all or nothing.

    Each row is one document at one VAT rate, with its amounts kept as issued
    except that credit notes are stored negative. A date-time is converted to
    `zone`, the company's time zone, before its date is taken. An empty
    `vat_rate` is accepted only when `vat` is 0 and is stored as rate 0.
    Raise `ImportRejectedError` listing every problem when the file has any.
    """
    source = Path(path)
    documents, clients, problems = _read_documents(source, zone)
    if problems:
        raise ImportRejectedError(source.name, problems)

    report = ImportReport(files=[source.name])
    with transaction(factory) as session:
        store_documents(
            session, documents, clients, report, actor=actor, progress=progress
        )
        audit.record(
            session,
            actor=actor,
            action="documents imported",
            detail=report.summary_line(),
        )
    logger.info("documents import: %s", report.summary_line())
    return report
