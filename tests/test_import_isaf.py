"""i.SAF import: amounts, encodings, re-imports, stale tasks and rejections."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session, sessionmaker

from services.errors import ImportRejectedError
from services.imports import import_isaf
from services.models import (
    AuditEvent,
    Client,
    ClientTask,
    Document,
    DocumentLine,
    DocumentStatus,
    DocumentType,
    Run,
    RunState,
    TaskState,
)

ACTOR = "cli:test"
Total = tuple[str, str, str, str]


def invoice(
    number: str,
    *,
    customer: str = "K-100",
    name: str = "UAB „Ąžuolų baldai“",
    day: str = "2026-10-05",
    kind: str = "SF",
    totals: Sequence[Total] = (("1000.00", "PVM1", "21", "210.00"),),
    vat_code: str = "LT100000000111",
    country: str = "LT",
) -> str:
    lines = "".join(
        f"""
          <DocumentTotal>
            <TaxableValue>{net}</TaxableValue>
            <TaxCode>{code}</TaxCode>
            {_percentage(rate)}
            <Amount>{vat}</Amount>
          </DocumentTotal>"""
        for net, code, rate, vat in totals
    )
    return f"""
      <Invoice>
        <InvoiceNo>{number}</InvoiceNo>
        <CustomerInfo>
          <CustomerID>{customer}</CustomerID>
          <VATRegistrationNumber>{vat_code}</VATRegistrationNumber>
          <RegistrationNumber>300000111</RegistrationNumber>
          <Country>{country}</Country>
          <Name>{name}</Name>
        </CustomerInfo>
        <InvoiceDate>{day}</InvoiceDate>
        <InvoiceType>{kind}</InvoiceType>
        <SpecialTaxation/>
        <References/>
        <VATPointDate xsi:nil="true"/>
        <DocumentTotals>{lines}
        </DocumentTotals>
      </Invoice>"""


def _percentage(rate: str) -> str:
    if rate == "nil":
        return '<TaxPercentage xsi:nil="true"/>'
    return f"<TaxPercentage>{rate}</TaxPercentage>"


def isaf_text(
    invoices: Sequence[str], *, encoding: str = "UTF-8", doctype: str = ""
) -> str:
    return (
        f'<?xml version="1.0" encoding="{encoding}"?>\n{doctype}'
        '<iSAFFile xmlns="http://www.vmi.lt/cms/imas/isaf" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
        "  <Header><FileDescription><FileVersion>iSAF1.2</FileVersion>"
        "<DataType>S</DataType></FileDescription></Header>\n"
        "  <SourceDocuments>\n    <SalesInvoices>"
        + "".join(invoices)
        + "\n    </SalesInvoices>\n  </SourceDocuments>\n</iSAFFile>\n"
    )


def write_isaf(
    folder: Path,
    invoices: Sequence[str],
    *,
    name: str = "isaf-2026-10.xml",
    encoding: str = "UTF-8",
) -> Path:
    path = folder / name
    path.write_bytes(isaf_text(invoices, encoding=encoding).encode(encoding))
    return path


OCTOBER = [
    invoice(
        "SF-2001",
        totals=[("1000.00", "PVM1", "21", "210.00"), ("100.00", "PVM2", "9", "9.00")],
    ),
    invoice(
        "SF-2002",
        customer="K-200",
        name="Šilelio ūkis, MB",
        day="2026-10-31",
        vat_code="ND",
        totals=[("45.50", "PVM1", "21", "9.56")],
    ),
    invoice(
        "KS-0007",
        kind="KS",
        day="2026-10-20",
        totals=[("-200.00", "PVM1", "21", "-42.00")],
    ),
]


def documents(factory: sessionmaker[Session]) -> dict[str, Document]:
    with factory() as session:
        rows = session.scalars(select(Document)).all()
        for row in rows:
            _ = row.lines, row.client
        return {row.number: row for row in rows}


def snapshot(factory: sessionmaker[Session]) -> dict[str, Any]:
    """Every row an import may write, to compare before and after a rejection."""
    with factory() as session:
        return {
            "clients": session.execute(
                select(Client.code, Client.name, Client.vat_code).order_by(Client.code)
            ).all(),
            "documents": session.execute(
                select(Document.number, Document.fingerprint, Document.status).order_by(
                    Document.number
                )
            ).all(),
            "lines": session.scalar(select(func.count()).select_from(DocumentLine)),
            "tasks": session.execute(
                select(ClientTask.id, ClientTask.state).order_by(ClientTask.id)
            ).all(),
            "audit": session.scalar(select(func.count()).select_from(AuditEvent)),
        }


def add_task(
    factory: sessionmaker[Session], period: str, code: str, state: TaskState
) -> int:
    with factory.begin() as session:
        run = session.scalar(select(Run).where(Run.period == period))
        if run is None:
            run = Run(
                period=period,
                planned_start=date(2026, 11, 3),
                planned_end=date(2026, 11, 10),
                state=RunState.GENERATED,
            )
            session.add(run)
            session.flush()
        client = session.scalars(select(Client).where(Client.code == code)).one()
        task = ClientTask(
            run_id=run.id, client_id=client.id, state=state, recipients=["a@b.lt"]
        )
        session.add(task)
        session.flush()
        return task.id


def task(factory: sessionmaker[Session], task_id: int) -> ClientTask:
    with factory() as session:
        return session.get_one(ClientTask, task_id)


def test_isaf_stores_documents_with_exact_amounts(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    path = write_isaf(tmp_path, OCTOBER)

    report = import_isaf(factory, [path], actor=ACTOR)

    assert (report.created, report.updated, report.unchanged) == (3, 0, 0)
    assert report.clients_created == 2
    stored = documents(factory)
    first = stored["SF-2001"]
    assert first.net == Decimal("1100.00")
    assert first.vat == Decimal("219.00")
    assert first.gross == Decimal("1319.00")
    assert [
        (line.vat_rate, line.tax_code, line.net, line.vat) for line in first.lines
    ] == [
        (Decimal("21"), "PVM1", Decimal("1000.00"), Decimal("210.00")),
        (Decimal("9"), "PVM2", Decimal("100.00"), Decimal("9.00")),
    ]
    assert first.type == DocumentType.INVOICE
    assert first.status == DocumentStatus.POSTED
    assert first.currency == "EUR"
    assert first.source_type == "SF"
    assert first.source_file == "isaf-2026-10.xml"
    assert first.date == date(2026, 10, 5)
    assert stored["SF-2002"].gross == Decimal("55.06")
    assert stored["SF-2002"].date == date(2026, 10, 31)
    credit = stored["KS-0007"]
    assert credit.type == DocumentType.CREDIT_NOTE
    assert (credit.net, credit.vat, credit.gross) == (
        Decimal("-200.00"),
        Decimal("-42.00"),
        Decimal("-242.00"),
    )


def test_isaf_creates_clients_from_customer_info(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    foreign = invoice("SF-3001", customer="K-300", name="Trading OÜ", country="EE")
    path = write_isaf(tmp_path, [*OCTOBER, foreign])

    import_isaf(factory, [path], actor=ACTOR)

    with factory() as session:
        clients = {client.code: client for client in session.scalars(select(Client))}
        emails = {code: client.email_addresses for code, client in clients.items()}
    assert clients["K-100"].name == "UAB „Ąžuolų baldai“"
    assert clients["K-100"].name_folded == "uab „ąžuolų baldai“"
    assert clients["K-100"].vat_code == "LT100000000111"
    assert clients["K-100"].registration_code == "300000111"
    assert clients["K-100"].country == "LT"
    assert clients["K-100"].language == "lt"
    assert clients["K-200"].vat_code == ""
    assert clients["K-300"].language == "en"
    assert emails == {"K-100": [], "K-200": [], "K-300": []}


@pytest.mark.parametrize("encoding", ["UTF-8", "windows-1257"], ids=["utf8", "cp1257"])
def test_isaf_reads_lithuanian_letters(
    factory: sessionmaker[Session], tmp_path: Path, encoding: str
) -> None:
    name = "Ąžuolų ūkis „Čęėįšųūž“, MB"
    path = write_isaf(tmp_path, [invoice("SF-4001", name=name)], encoding=encoding)

    import_isaf(factory, [path], actor=ACTOR)

    with factory() as session:
        client = session.scalars(select(Client)).one()
    assert client.name == name
    assert client.name_folded == name.casefold()


def test_isaf_reimport_changes_nothing(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    path = write_isaf(tmp_path, OCTOBER)
    import_isaf(factory, [path], actor=ACTOR)
    before = snapshot(factory)
    with factory() as session:
        stamps = session.execute(select(Document.number, Document.updated_at)).all()

    report = import_isaf(factory, [path], actor=ACTOR)

    assert (report.created, report.updated, report.unchanged) == (0, 0, 3)
    assert report.clients_created == 0
    after = snapshot(factory)
    assert after["audit"] == before["audit"] + 1
    assert {**after, "audit": 0} == {**before, "audit": 0}
    with factory() as session:
        assert (
            session.execute(select(Document.number, Document.updated_at)).all()
            == stamps
        )


def test_isaf_changed_document_marks_task_stale(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    import_isaf(factory, [write_isaf(tmp_path, OCTOBER)], actor=ACTOR)
    ready = add_task(factory, "2026-10", "K-100", TaskState.READY)
    other_client = add_task(factory, "2026-10", "K-200", TaskState.READY)
    other_month = add_task(factory, "2026-09", "K-100", TaskState.MISSING_EMAIL)
    changed = [
        invoice("SF-2001", totals=[("1000.00", "PVM1", "21", "210.00")]),
        *OCTOBER[1:],
    ]

    report = import_isaf(factory, [write_isaf(tmp_path, changed)], actor=ACTOR)

    assert (report.created, report.updated, report.unchanged) == (0, 1, 2)
    assert report.stale_tasks == [("2026-10", "K-100")]
    stale = task(factory, ready)
    assert stale.state == TaskState.STALE
    assert stale.stale_reason == (
        "invoice SF-2001 changed after the PDF was made; generate the month again"
    )
    assert task(factory, other_client).state == TaskState.READY
    assert task(factory, other_month).state == TaskState.MISSING_EMAIL
    document = documents(factory)["SF-2001"]
    assert document.net == Decimal("1000.00")
    assert document.gross == Decimal("1210.00")
    assert len(document.lines) == 1


def test_isaf_moved_date_marks_both_months(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    import_isaf(factory, [write_isaf(tmp_path, OCTOBER)], actor=ACTOR)
    october = add_task(factory, "2026-10", "K-200", TaskState.FAILED)
    november = add_task(factory, "2026-11", "K-200", TaskState.READY)
    moved = [*OCTOBER[:1], invoice("SF-2002", customer="K-200", day="2026-11-02")]

    report = import_isaf(factory, [write_isaf(tmp_path, moved)], actor=ACTOR)

    assert sorted(report.stale_tasks) == [("2026-10", "K-200"), ("2026-11", "K-200")]
    assert task(factory, october).state == TaskState.STALE
    assert task(factory, november).state == TaskState.STALE


@pytest.mark.parametrize(
    "state",
    [TaskState.SENT, TaskState.SENDING, TaskState.UNKNOWN, TaskState.SKIPPED],
    ids=lambda state: state.value,
)
def test_isaf_change_after_sending_is_audited(
    factory: sessionmaker[Session], tmp_path: Path, state: TaskState
) -> None:
    import_isaf(factory, [write_isaf(tmp_path, OCTOBER)], actor=ACTOR)
    sent = add_task(factory, "2026-10", "K-100", state)
    added = [*OCTOBER, invoice("DS-0001", kind="DS", day="2026-10-25")]

    report = import_isaf(factory, [write_isaf(tmp_path, added)], actor=ACTOR)

    assert task(factory, sent).state == state
    assert report.stale_tasks == []
    assert report.changed_after_sending == [("2026-10", "K-100", state.value)]
    with factory() as session:
        event = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "document changed after sending"
            )
        ).one()
    assert event.period == "2026-10"
    assert event.client_code == "K-100"
    assert "debit note DS-0001 added" in event.detail


def test_isaf_annulled_invoice_cancels(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    import_isaf(factory, [write_isaf(tmp_path, OCTOBER)], actor=ACTOR)
    ready = add_task(factory, "2026-10", "K-100", TaskState.READY)
    annulled = [invoice("SF-2001", kind="AN"), *OCTOBER[1:]]

    import_isaf(factory, [write_isaf(tmp_path, annulled)], actor=ACTOR)

    document = documents(factory)["SF-2001"]
    assert document.status == DocumentStatus.CANCELLED
    assert document.type == DocumentType.INVOICE
    assert document.source_type == "AN"
    assert task(factory, ready).stale_reason.startswith("invoice SF-2001 cancelled")


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("DS", DocumentType.DEBIT_NOTE),
        ("VS", DocumentType.INVOICE),
        ("VD", DocumentType.DEBIT_NOTE),
        ("VK", DocumentType.CREDIT_NOTE),
    ],
    ids=["DS", "VS", "VD", "VK"],
)
def test_isaf_maps_invoice_types(
    factory: sessionmaker[Session], tmp_path: Path, code: str, kind: DocumentType
) -> None:
    path = write_isaf(tmp_path, [invoice("X-1", kind=code)])

    import_isaf(factory, [path], actor=ACTOR)

    document = documents(factory)["X-1"]
    assert document.type == kind
    assert document.status == DocumentStatus.POSTED
    assert document.source_type == code


def test_isaf_credit_note_with_positive_amounts_is_negative(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    totals = [("200.00", "PVM1", "21", "42.00"), ("-10.00", "PVM2", "9", "0.90")]
    path = write_isaf(tmp_path, [invoice("KS-1", kind="KS", totals=totals)])

    import_isaf(factory, [path], actor=ACTOR)

    document = documents(factory)["KS-1"]
    assert (document.net, document.vat, document.gross) == (
        Decimal("-210.00"),
        Decimal("-42.90"),
        Decimal("-252.90"),
    )
    assert [(line.net, line.vat) for line in document.lines] == [
        (Decimal("-200.00"), Decimal("-42.00")),
        (Decimal("-10.00"), Decimal("-0.90")),
    ]


def test_isaf_exempt_line_without_percentage_is_rate_zero(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    totals = [("50.00", "PVM12", "nil", "0.00"), ("10.00", "PVM13", "", "0.00")]
    path = write_isaf(tmp_path, [invoice("SF-5", totals=totals)])

    import_isaf(factory, [path], actor=ACTOR)

    lines = documents(factory)["SF-5"].lines
    assert [line.vat_rate for line in lines] == [Decimal(0), Decimal(0)]


def test_isaf_keeps_known_client_name(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    with factory.begin() as session:
        session.add(
            Client(code="K-100", name="Ąžuolų baldai", name_folded="ąžuolų baldai")
        )

    import_isaf(factory, [write_isaf(tmp_path, OCTOBER[:1])], actor=ACTOR)

    with factory() as session:
        client = session.scalars(select(Client).where(Client.code == "K-100")).one()
    assert client.name == "Ąžuolų baldai"
    assert client.vat_code == "LT100000000111"
    assert client.registration_code == "300000111"


def test_isaf_several_files_import_together(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    first = write_isaf(tmp_path, OCTOBER[:2], name="part-1.xml")
    second = write_isaf(tmp_path, OCTOBER[2:], name="part-2.xml")

    report = import_isaf(factory, [first, second], actor=ACTOR)

    assert report.files == ["part-1.xml", "part-2.xml"]
    assert report.created == 3
    assert documents(factory)["KS-0007"].source_file == "part-2.xml"
    assert report.summary_line().startswith("part-1.xml, part-2.xml: 3 documents")


def _replace(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


def line_of(text: str, fragment: str) -> int:
    """Return the 1-based line of `text` on which `fragment` starts."""
    return text[: text.index(fragment)].count("\n") + 1


# Each case: how to spoil a one-invoice file, the text whose line the error
# names, and fragments of the message, where {line} is that line.
BAD_FILES = {
    "malformed": (
        lambda text: _replace(text, "</InvoiceDate>", "</InvoiceDat>"),
        "</InvoiceDat>",
        ["bad.xml, line {line}, column", ": not well-formed XML (mismatched tag)"],
    ),
    "external-entity": (
        lambda text: _replace(
            text,
            "<iSAFFile",
            '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n<iSAFFile',
        ).replace("UAB „Ąžuolų baldai“", "&e;"),
        "<!DOCTYPE",
        [
            "bad.xml, line {line}: the file declares a DTD (<!DOCTYPE x>), which is "
            "not allowed: expected plain i.SAF XML without DTD or entities"
        ],
    ),
    "unknown-type": (
        lambda text: _replace(text, "<InvoiceType>SF<", "<InvoiceType>XX<"),
        "<InvoiceType>",
        [
            "Invoice 1 (InvoiceNo SF-2001), line {line}: InvoiceType 'XX'",
            "SF (invoice), DS (debit note), KS (credit note)",
        ],
    ),
    "comma-amount": (
        lambda text: _replace(text, "<TaxableValue>1000.00<", "<TaxableValue>12,50<"),
        "<TaxableValue>",
        [
            "Invoice 1 (InvoiceNo SF-2001), line {line}: "
            "DocumentTotals/DocumentTotal[1]/TaxableValue '12,50'",
            "at most 2 decimals",
        ],
    ),
    "missing-date": (
        lambda text: _replace(text, "<InvoiceDate>2026-10-05</InvoiceDate>", ""),
        "<Invoice>",
        ["Invoice 1 (InvoiceNo SF-2001), line {line}: InvoiceDate", "is missing"],
    ),
    "bad-date": (
        lambda text: _replace(text, "2026-10-05", "2026-02-30"),
        "<InvoiceDate>",
        ["line {line}: InvoiceDate '2026-02-30'", "YYYY-MM-DD"],
    ),
    "not-isaf": (
        lambda text: text.replace("http://www.vmi.lt/cms/imas/isaf", "urn:other"),
        "<iSAFFile",
        ["line {line}: root element '{{urn:other}}iSAFFile'", "namespace"],
    ),
    "other-version": (
        lambda text: _replace(text, ">iSAF1.2<", ">iSAF2.0<"),
        "<FileVersion>",
        [
            "bad.xml, line {line}: iSAFFile/Header/FileDescription/FileVersion "
            "'iSAF2.0' is invalid: expected iSAF1.1 or iSAF1.2"
        ],
    ),
    "missing-version": (
        lambda text: _replace(text, "<FileVersion>iSAF1.2</FileVersion>", ""),
        "<Header>",
        ["FileVersion '' is invalid: expected iSAF1.1 or iSAF1.2; the element is"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_FILES), ids=list(BAD_FILES))
def test_isaf_bad_file_is_rejected_whole(
    factory: sessionmaker[Session], tmp_path: Path, case: str
) -> None:
    import_isaf(factory, [write_isaf(tmp_path, OCTOBER, name="good.xml")], actor=ACTOR)
    add_task(factory, "2026-10", "K-100", TaskState.READY)
    before = snapshot(factory)
    change, marker, fragments = BAD_FILES[case]
    text = change(isaf_text([invoice("SF-2001")]))
    path = tmp_path / "bad.xml"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(ImportRejectedError) as raised:
        import_isaf(factory, [path], actor=ACTOR)

    message = str(raised.value)
    assert message.startswith("bad.xml was rejected with 1 error; nothing was imported")
    line = line_of(text, marker)
    for fragment in fragments:
        assert fragment.format(line=line) in message
    assert snapshot(factory) == before


@pytest.mark.parametrize(
    "amount", ["abc", "NaN", "1e3", "", "12.345", "+5.00"], ids=repr
)
def test_isaf_amount_that_is_not_a_number_is_rejected(
    factory: sessionmaker[Session], tmp_path: Path, amount: str
) -> None:
    totals = [("10.00", "PVM1", "21", "2.10"), ("10.00", "PVM1", "21", amount)]
    path = write_isaf(tmp_path, [invoice("SF-9", totals=totals)])

    with pytest.raises(ImportRejectedError) as raised:
        import_isaf(factory, [path], actor=ACTOR)

    [problem] = raised.value.problems
    line = line_of(path.read_text(encoding="utf-8"), f"<Amount>{amount}</Amount>")
    assert line > 20
    assert problem.location == f"Invoice 1 (InvoiceNo SF-9), line {line}"
    assert problem.field == "DocumentTotals/DocumentTotal[2]/Amount"
    assert problem.value == amount
    assert snapshot(factory)["documents"] == []


def test_isaf_lists_every_problem_of_every_file(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    good = write_isaf(tmp_path, OCTOBER, name="good.xml")
    first = write_isaf(
        tmp_path,
        [invoice("A-1", kind="ZZ"), invoice("A-2", day="31.10.2026")],
        name="first.xml",
    )
    second = write_isaf(tmp_path, [invoice("B-1", customer="")], name="second.xml")

    with pytest.raises(ImportRejectedError) as raised:
        import_isaf(factory, [good, first, second], actor=ACTOR)

    problems = raised.value.problems
    assert [(problem.file, problem.field) for problem in problems] == [
        ("first.xml", "InvoiceType"),
        ("first.xml", "InvoiceDate"),
        ("second.xml", "CustomerInfo/CustomerID"),
    ]
    assert raised.value.file == "good.xml, first.xml, second.xml"
    assert snapshot(factory)["documents"] == []


def test_isaf_same_number_with_other_content_is_rejected(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    first = write_isaf(tmp_path, [invoice("SF-1")], name="a.xml")
    second = write_isaf(tmp_path, [invoice("SF-1", day="2026-10-06")], name="b.xml")

    with pytest.raises(ImportRejectedError) as raised:
        import_isaf(factory, [first, second], actor=ACTOR)

    [problem] = raised.value.problems
    assert problem.file == "b.xml"
    assert problem.value == "SF-1"
    assert "a.xml, Invoice 1 (InvoiceNo SF-1)" in problem.expected


def test_isaf_large_file_uses_few_queries(
    factory: sessionmaker[Session], engine: Engine, tmp_path: Path
) -> None:
    invoices = [
        invoice(
            f"SF-{number:05d}",
            customer=f"K-{number % 700:04d}",
            name=f"Klientas {number % 700}",
        )
        for number in range(3000)
    ]
    path = write_isaf(tmp_path, invoices)
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", count)
    try:
        report = import_isaf(factory, [path], actor=ACTOR)
    finally:
        event.remove(engine, "before_cursor_execute", count)

    assert report.created == 3000
    assert report.clients_created == 700
    assert len(statements) < 60
    with factory() as session:
        total = session.scalar(select(func.sum(Document.gross)))
    assert Decimal(total) == Decimal("3630000.00")


@pytest.mark.parametrize("version", ["iSAF1.1", "iSAF1.2"], ids=["1.1", "1.2"])
def test_isaf_accepts_file_versions(
    factory: sessionmaker[Session], tmp_path: Path, version: str
) -> None:
    path = tmp_path / "isaf.xml"
    text = isaf_text([invoice("SF-1")]).replace(">iSAF1.2<", f">{version}<")
    path.write_text(text, encoding="utf-8")

    report = import_isaf(factory, [path], actor=ACTOR)

    assert report.created == 1


@pytest.mark.parametrize(
    "content", [b"", b"  \n\t\n", b"\xef\xbb\xbf"], ids=["0-bytes", "blank", "bom"]
)
def test_isaf_empty_file_is_rejected(
    factory: sessionmaker[Session], tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "empty.xml"
    path.write_bytes(content)
    before = snapshot(factory)

    with pytest.raises(ImportRejectedError) as raised:
        import_isaf(factory, [path], actor=ACTOR)

    [problem] = raised.value.problems
    assert str(problem) == "empty.xml is empty: expected an i.SAF file"
    assert snapshot(factory) == before


def test_isaf_dev_null_is_rejected(factory: sessionmaker[Session]) -> None:
    with pytest.raises(ImportRejectedError) as raised:
        import_isaf(factory, ["/dev/null"], actor=ACTOR)

    assert str(raised.value.problems[0]) == "null is empty: expected an i.SAF file"
    assert snapshot(factory)["audit"] == 0


def test_isaf_binary_file_is_not_xml(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    path = tmp_path / "scan.xml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")

    with pytest.raises(ImportRejectedError) as raised:
        import_isaf(factory, [path], actor=ACTOR)

    assert str(raised.value.problems[0]) == (
        "scan.xml, line 1: the file is not XML (it starts with 89 50 4e 47): "
        "expected an i.SAF file"
    )


def test_isaf_bytes_in_other_encoding_name_it(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    text = isaf_text([invoice("SF-1")])
    path = tmp_path / "isaf.xml"
    path.write_bytes(text.encode("cp1257"))

    with pytest.raises(ImportRejectedError) as raised:
        import_isaf(factory, [path], actor=ACTOR)

    line = line_of(text, "<Name>")
    assert str(raised.value.problems[0]) == (
        f"isaf.xml, line {line}: the file declares UTF-8 but line {line} is not "
        'valid UTF-8; save it as UTF-8 or declare encoding="windows-1257"'
    )
    assert snapshot(factory)["documents"] == []


def test_isaf_number_of_another_client_is_rejected(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    good = write_isaf(tmp_path, [invoice("A-2", customer="C-1")], name="good.xml")
    import_isaf(factory, [good], actor=ACTOR)
    before = snapshot(factory)
    moved = write_isaf(
        tmp_path, [invoice("A-2", customer="C-7", name="UAB Kitas")], name="next.xml"
    )

    with pytest.raises(ImportRejectedError) as raised:
        import_isaf(factory, [moved], actor=ACTOR)

    [problem] = raised.value.problems
    assert problem.file == "next.xml"
    assert str(problem) == (
        "next.xml, Invoice 1 (InvoiceNo A-2), line 6: InvoiceNo 'A-2' is invalid: "
        "expected a number not already used by client C-1 (imported from good.xml)"
    )
    assert snapshot(factory) == before
    assert documents(factory)["A-2"].client.code == "C-1"


def test_isaf_control_characters_become_spaces(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    # XML 1.0 allows no control characters other than these three.
    name = "UAB\t„Ąžuolų\r\n  baldai“\t"
    path = write_isaf(tmp_path, [invoice("SF-\t1", name=name)])

    import_isaf(factory, [path], actor=ACTOR)

    [document] = documents(factory).values()
    assert document.number == "SF- 1"
    assert document.client.name == "UAB „Ąžuolų baldai“"
