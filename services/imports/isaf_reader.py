"""Stream the sales invoices out of an i.SAF 1.2 XML file, with line numbers.

The file is parsed by defusedxml's expat parser with DTDs forbidden, so entity
declarations and external references are rejected before anything is read.
Each invoice is handed over as soon as its end tag is read, so memory stays
flat whatever the file's size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.parsers import expat

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

ISAF_NAMESPACE = "http://www.vmi.lt/cms/imas/isaf"
_NIL = "http://www.w3.org/2001/XMLSchema-instance}nil"
_INVOICE_PATH = ("iSAFFile", "SourceDocuments", "SalesInvoices", "Invoice")
_READ_SIZE = 1 << 16


class XmlRejected(Exception):
    """The file cannot be read as i.SAF at all: malformed, a DTD, another format."""

    def __init__(self, location: str, field: str, value: str, expected: str) -> None:
        super().__init__(expected)
        self.location = location
        self.field = field
        self.value = value
        self.expected = expected


@dataclass(frozen=True, slots=True)
class Element:
    """A leaf element's text, the line it starts on, and whether it is xsi:nil."""

    text: str
    line: int
    nil: bool = False


@dataclass(slots=True)
class RawInvoice:
    """One `Invoice` element: its leaf elements by path, as read."""

    index: int
    line: int
    fields: dict[str, Element] = field(default_factory=dict)
    # One entry per DocumentTotal: its line and its leaf elements by name.
    totals: list[tuple[int, dict[str, Element]]] = field(default_factory=list)


class _SalesHandler:
    """Expat handlers that build `RawInvoice` records as the file is parsed.

    Names arrive as "namespace}local" because ElementTree creates the expat
    parser with "}" as the namespace separator.
    """

    def __init__(self, parser: Any, on_invoice: Callable[[RawInvoice], None]) -> None:
        self.parser = parser
        self.on_invoice = on_invoice
        self.sales_sections = 0
        self._path: list[str] = []
        self._text: list[str] = []
        self._nil = False
        self._started = 0
        # True from an element's start tag until any end tag: a leaf's end.
        self._in_leaf = False
        self._invoice: RawInvoice | None = None
        self._total: dict[str, Element] | None = None
        self._count = 0

    def start(self, tag: str, attributes: list[str]) -> None:
        namespace, _, name = tag.rpartition("}")
        path = self._path
        depth = len(path)
        if depth == 0:
            _check_root(namespace, name, self.parser.CurrentLineNumber)
        path.append(name)
        self._text = []
        self._nil = bool(attributes) and _is_nil(attributes)
        self._started = self.parser.CurrentLineNumber
        self._in_leaf = True

        if depth == 2 and name == "SalesInvoices" and path[1] == "SourceDocuments":
            self.sales_sections += 1
        elif depth == 3 and name == "Invoice" and tuple(path) == _INVOICE_PATH:
            self._count += 1
            self._invoice = RawInvoice(self._count, self._started)
        elif (
            depth == 5
            and self._invoice is not None
            and name == "DocumentTotal"
            and path[4] == "DocumentTotals"
        ):
            self._total = {}
            self._invoice.totals.append((self._started, self._total))

    def data(self, text: str) -> None:
        self._text.append(text)

    def end(self, tag: str) -> None:
        path = self._path
        depth = len(path)
        name = path.pop()
        is_leaf, self._in_leaf = self._in_leaf, False
        invoice = self._invoice
        if invoice is None:
            return
        if depth == 4:
            self._invoice = None
            self.on_invoice(invoice)
            return
        if not is_leaf:
            return

        element = Element("".join(self._text).strip(), self._started, self._nil)
        if depth == 7 and path[5] == "DocumentTotal" and path[4] == "DocumentTotals":
            if self._total is not None:
                self._total[name] = element
        elif depth == 5:
            invoice.fields.setdefault(name, element)
        elif depth == 6:
            invoice.fields.setdefault(f"{path[4]}/{name}", element)


def _is_nil(attributes: list[str]) -> bool:
    """Tell whether ordered attributes [name, value, ...] hold xsi:nil="true"."""
    for index in range(0, len(attributes), 2):
        if attributes[index] == _NIL:
            return attributes[index + 1].strip() in ("true", "1")
    return False


def _check_root(namespace: str, name: str, line: int) -> None:
    if name == "iSAFFile" and namespace == ISAF_NAMESPACE:
        return
    found = f"{{{namespace}}}{name}" if namespace else name
    raise XmlRejected(
        f"line {line}",
        "root element",
        found,
        f"an i.SAF 1.2 file whose root element is iSAFFile in the namespace "
        f"{ISAF_NAMESPACE}",
    )


def read_invoices(path: Path, on_invoice: Callable[[RawInvoice], None]) -> int:
    """Parse `path`, calling `on_invoice` for each sales invoice in file order.

    Return the number of SalesInvoices sections. Raise `XmlRejected` for a file
    that is not well-formed, declares a DTD or is not i.SAF, and `OSError` when
    it cannot be read.
    """
    # defusedxml installs the handlers that reject DTDs, entity declarations
    # and external references, and this module replaces only the element and
    # text handlers, which skips ElementTree's per-element overhead.
    parser = DefusedXMLParser(forbid_dtd=True)
    expat_parser: Any = parser.parser
    handler = _SalesHandler(expat_parser, on_invoice)
    expat_parser.buffer_text = True
    expat_parser.ordered_attributes = True
    expat_parser.StartElementHandler = handler.start
    expat_parser.EndElementHandler = handler.end
    expat_parser.CharacterDataHandler = handler.data

    try:
        with path.open("rb") as stream:
            while chunk := stream.read(_READ_SIZE):
                expat_parser.Parse(chunk, False)
        expat_parser.Parse(b"", True)
    except expat.ExpatError as error:
        raise XmlRejected(
            f"line {error.lineno}, column {error.offset + 1}",
            "XML",
            "",
            "well-formed XML; the parser stopped with: "
            f"{expat.ErrorString(error.code)}",
        ) from error
    except DefusedXmlException as error:
        raise XmlRejected(
            f"line {expat_parser.CurrentLineNumber}",
            "DOCTYPE",
            str(error),
            "XML without a DOCTYPE or entity declarations; they are rejected "
            "because entities can read local files or the network. Export the "
            "file again from the ERP",
        ) from error
    return handler.sales_sections
