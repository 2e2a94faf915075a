"""Rows for tests that need clients, documents and tasks without an import file."""

from __future__ import annotations

import hashlib
from datetime import date
from decimal import Decimal

from sqlalchemy.orm import Session

from services.models import (
    Client,
    ClientEmail,
    Document,
    DocumentLine,
    DocumentStatus,
    DocumentType,
)
from services.statements import Company

COMPANY = Company(
    name="UAB „Bandymų įmonė“",
    code="300000099",
    vat_code="LT100000009917",
    address="Testų g. 1, Vilnius",
)


def add_client(
    session: Session,
    code: str,
    name: str,
    *,
    emails: tuple[str, ...] = (),
    language: str = "lt",
    excluded: bool = False,
    reason: str = "",
) -> Client:
    client = Client(
        code=code,
        name=name,
        name_folded=name.casefold(),
        language=language,
        address="Gatvė 1, Vilnius",
        excluded=excluded,
        exclude_reason=reason,
        emails=[
            ClientEmail(address=address, address_folded=address.lower(), position=index)
            for index, address in enumerate(emails)
        ],
    )
    session.add(client)
    session.flush()
    return client


def add_document(
    session: Session,
    client: Client,
    number: str,
    day: date,
    net: str,
    vat: str,
    *,
    rate: str = "21",
    kind: DocumentType = DocumentType.INVOICE,
    status: DocumentStatus = DocumentStatus.POSTED,
    currency: str = "EUR",
) -> Document:
    net_amount, vat_amount = Decimal(net), Decimal(vat)
    digest = hashlib.sha256(
        f"{number}|{day}|{net}|{vat}|{kind}|{status}|{currency}".encode()
    ).hexdigest()
    document = Document(
        number=number,
        client_id=client.id,
        date=day,
        type=kind,
        status=status,
        currency=currency,
        net=net_amount,
        vat=vat_amount,
        gross=net_amount + vat_amount,
        fingerprint=digest,
        lines=[
            DocumentLine(
                position=0, vat_rate=Decimal(rate), net=net_amount, vat=vat_amount
            )
        ],
    )
    session.add(document)
    session.flush()
    return document
