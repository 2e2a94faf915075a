"""Import the sales part of i.SAF 1.1 and 1.2 XML files, the Lithuanian VAT register."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from services import audit
from services.db import transaction
from services.errors import ImportProblem, ImportRejectedError
from services.imports.isaf_reader import Element, RawInvoice, XmlRejected, read_invoices
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
from services.progress import Progress, no_progress

logger = logging.getLogger(__name__)

# i.SAF InvoiceType codes and the document each becomes.
INVOICE_TYPES = {
    "SF": (DocumentType.INVOICE, DocumentStatus.POSTED),
    "DS": (DocumentType.DEBIT_NOTE, DocumentStatus.POSTED),
    "KS": (DocumentType.CREDIT_NOTE, DocumentStatus.POSTED),
    "VS": (DocumentType.INVOICE, DocumentStatus.POSTED),
    "VD": (DocumentType.DEBIT_NOTE, DocumentStatus.POSTED),
    "VK": (DocumentType.CREDIT_NOTE, DocumentStatus.POSTED),
    "AN": (DocumentType.INVOICE, DocumentStatus.CANCELLED),
}
TYPES_EXPECTED = (
    "one of SF (invoice), DS (debit note), KS (credit note), VS (simplified "
    "invoice), VD (simplified debit note), VK (simplified credit note) or AN "
    "(annulled invoice)"
)
# i.SAF writes ND ("nenurodyta") where a customer has no such code.
_NOT_GIVEN = "ND"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
ZERO = Decimal("0.00")


@dataclass
class _FileReading:
    """Documents, clients and problems gathered from one or more files."""

    documents: dict[str, ParsedDocument] = field(default_factory=dict)
    clients: dict[str, ParsedClient] = field(default_factory=dict)
    problems: list[ImportProblem] = field(default_factory=list)


class _InvoiceReader:
    """Turn one `RawInvoice` into a `ParsedDocument`, collecting every problem."""

    def __init__(self, file: str, raw: RawInvoice) -> None:
        self.file = file
        self.raw = raw
        self.problems: list[ImportProblem] = []
        number = raw.fields.get("InvoiceNo")
        self.number = number.text if number else ""
        label = f"Invoice {raw.index}"
        self.label = f"{label} (InvoiceNo {self.number})" if self.number else label

    def problem(self, line: int, path: str, value: str, expected: str) -> None:
        location = f"{self.label}, line {line}"
        self.problems.append(ImportProblem(self.file, location, path, value, expected))

    def text(self, path: str, expected: str, *, max_length: int) -> str:
        """Return a required element's text, recording a problem when it is bad."""
        element = self.raw.fields.get(path)
        if element is None or not element.text:
            state = "missing" if element is None else "empty"
            line = self.raw.line if element is None else element.line
            self.problem(line, path, "", f"{expected}; the element is {state}")
            return ""
        if len(element.text) > max_length:
            self.problem(
                element.line, path, element.text, f"at most {max_length} characters"
            )
            return ""
        return element.text

    def optional(self, path: str, *, max_length: int) -> str:
        element = self.raw.fields.get(path)
        if element is None or element.nil or element.text == _NOT_GIVEN:
            return ""
        if len(element.text) > max_length:
            self.problem(
                element.line, path, element.text, f"at most {max_length} characters"
            )
            return ""
        return element.text

    def invoice_date(self) -> date | None:
        text = self.text("InvoiceDate", "a date as YYYY-MM-DD", max_length=10)
        if not text:
            return None
        try:
            if _DATE.match(text):
                return date.fromisoformat(text)
        except ValueError:
            pass
        line = self.raw.fields["InvoiceDate"].line
        self.problem(
            line, "InvoiceDate", text, "a date as YYYY-MM-DD, such as 2026-10-31"
        )
        return None

    def invoice_type(self) -> str:
        code = self.text("InvoiceType", TYPES_EXPECTED, max_length=16)
        if code and code not in INVOICE_TYPES:
            line = self.raw.fields["InvoiceType"].line
            self.problem(line, "InvoiceType", code, TYPES_EXPECTED)
            return ""
        return code

    def client(self) -> ParsedClient:
        code = self.text(
            "CustomerInfo/CustomerID",
            "the client code from the ERP, which statements are grouped by",
            max_length=64,
        )
        country = self.optional("CustomerInfo/Country", max_length=2).upper()
        if country and not _COUNTRY.match(country):
            line = self.raw.fields["CustomerInfo/Country"].line
            self.problem(line, "CustomerInfo/Country", country, "a two-letter code")
            country = ""
        return ParsedClient(
            code=code,
            name=self.optional("CustomerInfo/Name", max_length=500),
            registration_code=self.optional(
                "CustomerInfo/RegistrationNumber", max_length=64
            ),
            vat_code=self.optional("CustomerInfo/VATRegistrationNumber", max_length=64),
            country=country,
            file=self.file,
            location=f"{self.label}, line {self.raw.line}",
        )

    def lines(self) -> list[ParsedLine]:
        if not self.raw.totals:
            self.problem(
                self.raw.line,
                "DocumentTotals/DocumentTotal",
                "",
                "at least one DocumentTotal with TaxableValue, TaxCode, "
                "TaxPercentage and Amount; none was found",
            )
        return [
            self.line(position, line, elements)
            for position, (line, elements) in enumerate(self.raw.totals, start=1)
        ]

    def line(
        self, position: int, line: int, elements: dict[str, Element]
    ) -> ParsedLine:
        prefix = f"DocumentTotals/DocumentTotal[{position}]"
        net = self.amount(prefix, "TaxableValue", elements, line, nil_allowed=False)
        vat = self.amount(prefix, "Amount", elements, line, nil_allowed=True)
        tax_code = elements.get("TaxCode")
        code = tax_code.text if tax_code else ""
        if len(code) > 16:
            self.problem(line, f"{prefix}/TaxCode", code, "at most 16 characters")
        return ParsedLine(self.rate(prefix, elements, line), code[:16], net, vat)

    def amount(
        self,
        prefix: str,
        name: str,
        elements: dict[str, Element],
        line: int,
        *,
        nil_allowed: bool,
    ) -> Decimal:
        element = elements.get(name)
        path = f"{prefix}/{name}"
        if element is None:
            self.problem(line, path, "", f"{AMOUNT_EXPECTED}; the element is missing")
            return ZERO
        if nil_allowed and element.nil and not element.text:
            return ZERO
        value = parse_amount(element.text)
        if value is None:
            self.problem(element.line, path, element.text, AMOUNT_EXPECTED)
            return ZERO
        return value

    def rate(self, prefix: str, elements: dict[str, Element], line: int) -> Decimal:
        """Return the VAT percentage; an exempt line may leave it empty or nil."""
        element = elements.get("TaxPercentage")
        if element is None or element.nil or not element.text:
            return Decimal(0)
        value = parse_rate(element.text)
        if value is None:
            path = f"{prefix}/TaxPercentage"
            self.problem(element.line, path, element.text, RATE_EXPECTED)
            return Decimal(0)
        return value

    def document(self) -> tuple[ParsedDocument | None, ParsedClient]:
        self.text("InvoiceNo", "the document number", max_length=100)
        client = self.client()
        day = self.invoice_date()
        code = self.invoice_type()
        lines = self.lines()
        if self.problems or day is None or not code:
            return None, client

        kind, status = INVOICE_TYPES[code]
        if kind == DocumentType.CREDIT_NOTE:
            # Sum the lines after their sign is fixed, so that the totals of a
            # credit note with lines of mixed signs equal the sum of its lines.
            for line in lines:
                line.net, line.vat = -abs(line.net), -abs(line.vat)
        net = sum((line.net for line in lines), ZERO)
        vat = sum((line.vat for line in lines), ZERO)
        document = ParsedDocument(
            number=self.number,
            client_code=client.code,
            date=day,
            type=kind,
            status=status,
            currency="EUR",
            net=net,
            vat=vat,
            gross=net + vat,
            lines=lines,
            source_type=code,
            source_file=self.file,
            location=f"{self.label}, line {self.raw.line}",
            number_field="InvoiceNo",
        )
        return document, client


def _read_file(path: Path, reading: _FileReading) -> None:
    """Add the file's documents, clients and problems to `reading`."""
    file = path.name

    def on_invoice(raw: RawInvoice) -> None:
        reader = _InvoiceReader(file, raw)
        document, client = reader.document()
        reading.problems.extend(reader.problems)
        if client.code and client.code not in reading.clients:
            reading.clients[client.code] = client
        if document is not None:
            _add_document(reading, document)

    try:
        sections = read_invoices(path, on_invoice)
    except XmlRejected as error:
        reading.problems.append(error.problem(file))
        return
    except OSError as error:
        reading.problems.append(
            ImportProblem(
                file, str(path), "file", error.strerror or str(error), "a readable file"
            )
        )
        return
    if sections == 0:
        reading.problems.append(
            ImportProblem(
                file,
                "iSAFFile/SourceDocuments",
                "SalesInvoices",
                "",
                "an i.SAF sales export with a SalesInvoices section; the file has "
                "none, so it may hold purchases only",
            )
        )


def _add_document(reading: _FileReading, document: ParsedDocument) -> None:
    first = reading.documents.get(document.number)
    if first is None:
        reading.documents[document.number] = document
        return
    if first.fingerprint != document.fingerprint:
        reading.problems.append(
            ImportProblem(
                document.source_file,
                document.location,
                "InvoiceNo",
                document.number,
                "a number used once; it is also at "
                f"{first.source_file}, {first.location}, with different content",
            )
        )


def import_isaf(
    factory: sessionmaker[Session],
    paths: Sequence[Path | str],
    *,
    actor: str,
    progress: Progress | None = None,
) -> ImportReport:
    """Import the sales invoices of one or more i.SAF files, all or nothing.

    Every file is checked before anything is stored. Raise `ImportRejectedError`
    listing the problems of every file when any file has one.
    """
    files = [Path(path) for path in paths]
    names = [path.name for path in files]
    report_progress = progress or no_progress
    reading = _FileReading()
    for done, path in enumerate(files):
        report_progress(done, len(files), f"reading {path.name}")
        _read_file(path, reading)
    report_progress(len(files), len(files), "files read")
    if reading.problems:
        raise ImportRejectedError(", ".join(names), reading.problems)

    report = ImportReport(files=names)
    with transaction(factory) as session:
        store_documents(
            session,
            list(reading.documents.values()),
            reading.clients,
            report,
            actor=actor,
            progress=progress,
        )
        audit.record(
            session, actor=actor, action="i.SAF imported", detail=report.summary_line()
        )
    logger.info("i.SAF import: %s", report.summary_line())
    return report
