"""Statement PDFs written with font subsets cached between PDFs."""

from __future__ import annotations

import io
import re

from pypdf import PdfReader

from services.pdf import render_statement_pdf
from tests.test_pdf import make_statement

# The creation date and the file ID derived from it differ between two runs.
_VOLATILE = re.compile(rb"/CreationDate \(D:[^)]*\)|/ID \[<[0-9A-F]+><[0-9A-F]+>\]")


def _stable(pdf: bytes) -> bytes:
    return _VOLATILE.sub(b"", pdf)


def test_cached_subsets_keep_each_pdfs_letters() -> None:
    # Latvian ī and ā are outside the common characters, so that PDF gets an
    # exact subset while the others share the common one.
    names = ["UAB „Ąžuolų čiužiniai“", "SIA Rīgas Tirdzniecība", "MB Quick Wax"]
    statements = [make_statement(3, name=name) for name in names]

    first = [render_statement_pdf(statement) for statement in statements]
    second = [render_statement_pdf(statement) for statement in reversed(statements)]

    for name, pdf in zip(names, first, strict=True):
        assert name in PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    for before, after in zip(first, reversed(second), strict=True):
        assert _stable(before) == _stable(after)
