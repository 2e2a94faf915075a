"""Stream the sales invoices out of an i.SAF 1.1 or 1.2 XML file, with line numbers.

The file is parsed by defusedxml's expat parser with DTDs forbidden, so entity
declarations and external references are rejected before anything is read.
Each invoice is handed over as soon as its end tag is read, so memory stays
flat whatever the file's size.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.parsers import expat

from defusedxml import DefusedXmlException, DTDForbidden
from defusedxml.ElementTree import DefusedXMLParser

from services.errors import ImportProblem
from services.imports.problems import empty_file, file_problem
from services.imports.records import clean_text

ISAF_NAMESPACE = "http://www.vmi.lt/cms/imas/isaf"
# The sales part, the only part read, has the same shape in both versions.
FILE_VERSIONS = ("iSAF1.1", "iSAF1.2")
_VERSION_PATH = ("iSAFFile", "Header", "FileDescription")
_DECLARED_ENCODING = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([\w.:-]+)["']""")
_NO_DTD = "expected plain i.SAF XML without DTD or entities"
_NIL = "http://www.w3.org/2001/XMLSchema-instance}nil"
_INVOICE_PATH = ("iSAFFile", "SourceDocuments", "SalesInvoices", "Invoice")
_READ_SIZE = 1 << 16


class XmlRejected(Exception):
    """The file cannot be read as i.SAF at all: malformed, a DTD, another format."""

    def __init__(self, make_problem: Callable[[str], ImportProblem]) -> None:
        super().__init__()
        self._make_problem = make_problem

    def problem(self, file: str) -> ImportProblem:
        """Return the problem as it is reported for the file named `file`."""
        return self._make_problem(file)


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
        self.file_version: Element | None = None

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
            if depth == 4 and name == "FileVersion" and tuple(path) == _VERSION_PATH:
                self.file_version = self._element()
                _check_version(self.file_version)
            return
        if depth == 4:
            self._invoice = None
            self.on_invoice(invoice)
            return
        if not is_leaf:
            return

        element = self._element()
        if depth == 7 and path[5] == "DocumentTotal" and path[4] == "DocumentTotals":
            if self._total is not None:
                self._total[name] = element
        elif depth == 5:
            invoice.fields.setdefault(name, element)
        elif depth == 6:
            invoice.fields.setdefault(f"{path[4]}/{name}", element)

    def _element(self) -> Element:
        return Element(clean_text("".join(self._text)), self._started, self._nil)


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
    expected = (
        "an i.SAF file whose root element is iSAFFile in the namespace "
        f"{ISAF_NAMESPACE}"
    )
    raise XmlRejected(
        lambda file: ImportProblem(
            file, f"line {line}", "root element", found, expected
        )
    )


def _check_version(element: Element | None) -> None:
    if element is not None and element.text in FILE_VERSIONS:
        return
    versions = " or ".join(FILE_VERSIONS)
    field = "/".join((*_VERSION_PATH, "FileVersion"))
    if element is None:
        raise XmlRejected(
            lambda file: ImportProblem(
                file, "Header", field, "", f"{versions}; the element is missing"
            )
        )
    found = element.text
    location = f"line {element.line}"
    raise XmlRejected(
        lambda file: ImportProblem(
            file, location, field, found, f"{versions}, the versions this reads"
        )
    )


def read_invoices(path: Path, on_invoice: Callable[[RawInvoice], None]) -> int:
    """Parse `path`, calling `on_invoice` for each sales invoice in file order.

    Return the number of SalesInvoices sections. Raise `XmlRejected` for a file
    that is empty, not well-formed, in another encoding than it declares,
    declares a DTD, is not i.SAF or is an i.SAF version other than
    `FILE_VERSIONS`, and `OSError` when it cannot be read.
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

    start = b""
    try:
        with path.open("rb") as stream:
            while chunk := stream.read(_READ_SIZE):
                start = start or chunk.removeprefix(codecs.BOM_UTF8).lstrip()
                expat_parser.Parse(chunk, False)
        expat_parser.Parse(b"", True)
    except expat.ExpatError as error:
        if not start:
            raise XmlRejected(lambda file: empty_file(file, "an i.SAF file")) from error
        raise _not_well_formed(path, start, error) from error
    except DefusedXmlException as error:
        raise _forbidden_declaration(expat_parser.CurrentLineNumber, error) from error
    _check_version(handler.file_version)
    return handler.sales_sections


def _not_well_formed(path: Path, start: bytes, error: expat.ExpatError) -> XmlRejected:
    """Describe a parse error, naming the encoding when the bytes are the cause."""
    line = error.lineno
    text = start
    if not text.startswith(b"<"):
        found = text[:4].hex(" ")
        message = (
            f"the file is not XML (it starts with {found}): expected an i.SAF file"
        )
        return XmlRejected(lambda file: file_problem(file, "line 1", "XML", message))

    match = _DECLARED_ENCODING.match(text)
    declared = match.group(1).decode("ascii") if match else "UTF-8"
    if _ascii_compatible(declared) and not _line_decodes(path, line, declared):
        declaration = (
            f"declares {declared}" if match else "declares no encoding, so UTF-8,"
        )
        advice = f"save it as {declared} or declare the encoding it is saved in"
        if codecs.lookup(declared).name == "utf-8":
            advice = 'save it as UTF-8 or declare encoding="windows-1257"'
        message = (
            f"the file {declaration} but line {line} is not valid {declared}; {advice}"
        )
        return XmlRejected(
            lambda file: file_problem(file, f"line {line}", "encoding", message)
        )

    reason = expat.ErrorString(error.code) or "unknown error"
    if reason.startswith("not well-formed (") and reason.endswith(")"):
        reason = reason[len("not well-formed (") : -1]
    location = f"line {line}, column {error.offset + 1}"
    message = f"not well-formed XML ({reason})"
    return XmlRejected(lambda file: file_problem(file, location, "XML", message))


def _ascii_compatible(encoding: str) -> bool:
    """Tell whether lines in `encoding` end in b"\\n", as UTF-16 lines do not."""
    try:
        return "\n".encode(encoding) == b"\n"
    except LookupError:
        return False


def _line_decodes(path: Path, number: int, encoding: str) -> bool:
    with path.open("rb") as stream:
        for index, line in enumerate(stream, start=1):
            if index == number:
                try:
                    line.decode(encoding)
                except UnicodeDecodeError:
                    return False
                return True
    return True


def _forbidden_declaration(line: int, error: DefusedXmlException) -> XmlRejected:
    if isinstance(error, DTDForbidden):
        declared = f"a DTD (<!DOCTYPE {error.name}>)"
    else:
        declared = "entities or external references"
    message = f"the file declares {declared}, which is not allowed: {_NO_DTD}"
    return XmlRejected(
        lambda file: file_problem(file, f"line {line}", "DOCTYPE", message)
    )
