"""The printed totals of a generated statement equal the sum of its printed rows."""

from __future__ import annotations

import io
import re
from datetime import date
from decimal import Decimal

from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from services import runs
from services.models import ClientTask, DocumentType
from services.periods import Period
from tests.factories import COMPANY, add_client, add_document

NOVEMBER = Period(2026, 11)
AMOUNT = r"-?\d{1,3}(?:\xa0\d{3})*,\d{2}"
ROW = re.compile(rf"^(D-\d+) \S+ .*? ({AMOUNT}) ({AMOUNT}) ({AMOUNT}) ([A-Z]{{3}})$")
TOTAL = re.compile(rf"^Iš viso ({AMOUNT}) ({AMOUNT}) ({AMOUNT}) ([A-Z]{{3}})$")


def _amount(text: str) -> Decimal:
    return Decimal(text.replace("\xa0", "").replace(",", "."))


def _pdf_lines(pdf: bytes) -> list[str]:
    reader = PdfReader(io.BytesIO(pdf))
    return [line for page in reader.pages for line in page.extract_text().splitlines()]


def test_printed_totals_equal_printed_rows(factory: sessionmaker[Session]) -> None:
    expected: dict[str, Decimal] = {"EUR": Decimal("0"), "USD": Decimal("0")}
    with factory() as session, session.begin():
        client = add_client(session, "T", "Sumų tikrintojas", emails=("t@t.lt",))
        for index in range(1, 41):
            currency = "USD" if index % 7 == 0 else "EUR"
            kind = DocumentType.CREDIT_NOTE if index % 5 == 0 else DocumentType.INVOICE
            sign = "-" if kind is DocumentType.CREDIT_NOTE else ""
            net = f"{sign}{index * 1013 % 9999}.{index * 37 % 100:02d}"
            vat = f"{sign}{index * 211 % 2099}.{index * 53 % 100:02d}"
            add_document(
                session,
                client,
                f"D-{index:03d}",
                date(2026, 11, 1 + index % 30),
                net,
                vat,
                kind=kind,
                currency=currency,
            )
            expected[currency] += Decimal(net) + Decimal(vat)
    runs.create_run(
        factory,
        NOVEMBER,
        planned_start=date(2026, 12, 1),
        planned_end=date(2026, 12, 5),
        actor="test",
    )

    runs.generate_run(factory, NOVEMBER, company=COMPANY, actor="test")

    with factory() as session:
        task = session.scalars(select(ClientTask)).one()
        pdf, totals = task.pdf, task.totals
    lines = _pdf_lines(pdf)
    rows = [match for line in lines if (match := ROW.match(line))]
    printed = {match.group(4): match for line in lines if (match := TOTAL.match(line))}
    assert len(rows) == 40
    for currency in ("EUR", "USD"):
        mine = [row for row in rows if row.group(5) == currency]
        for column in (1, 2, 3):
            row_sum = sum((_amount(row.group(column + 1)) for row in mine), Decimal(0))
            assert _amount(printed[currency].group(column)) == row_sum
        assert _amount(printed[currency].group(3)) == expected[currency]
        assert Decimal(totals[currency]) == expected[currency]
