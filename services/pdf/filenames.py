"""The statement PDF's attachment file name: plain ASCII, naming client and period."""

from __future__ import annotations

import re

from anyascii import anyascii

from services.pdf.labels import labels_for
from services.statements import Statement

# Long enough for a client's code and the start of its name; mail clients and
# file systems handle names well under 255 bytes.
MAX_NAME_LENGTH = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9]+")


def attachment_filename(statement: Statement) -> str:
    """Name the PDF, e.g. "saskaitu-sarasas_2026-10_K-0001_UAB-Pavyzdziu-prekyba.pdf".

    Letters are transliterated to ASCII, every other run of characters becomes
    one hyphen, and the client's name is cut so that the whole name, with
    ".pdf", is at most `MAX_NAME_LENGTH` characters.
    """
    prefix = labels_for(statement.client.language).filename_prefix
    parts = [prefix, str(statement.period), _slug(statement.client.code)]
    stem = "_".join(part for part in parts if part)

    room = MAX_NAME_LENGTH - len(stem) - len("_") - len(".pdf")
    name = _slug(statement.client.name)[:room].rstrip("-")
    if name:
        stem = f"{stem}_{name}"
    return f"{stem[: MAX_NAME_LENGTH - len('.pdf')]}.pdf"


def _slug(text: str) -> str:
    return _UNSAFE.sub("-", anyascii(text)).strip("-")
