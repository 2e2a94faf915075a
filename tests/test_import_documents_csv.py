"""Documents CSV import: columns, dates in the company's time zone, rejections."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from services.errors import ImportRejectedError
from services.imports import import_documents_csv, import_isaf
from services.models import (
    AuditEvent,
    Client,
    ClientTask,
    Document,
    DocumentStatus,
    DocumentType,
    Run,
    RunState,
    TaskState,
)
from tests.test_import_isaf import invoice, write_isaf

ACTOR = "cli:test"
VILNIUS = ZoneInfo("Europe/Vilnius")
HEADER = (
    "number,client_code,client_name,date,type,net,vat,gross,currency,vat_rate,status"
)
ROWS = [
    "PRK-1,K-1,Ąžuolų baldai UAB,2026-10-05,invoice,100.00,21.00,121.00,EUR,21,posted",
    'PRK-2,K-2,"Šilelio ūkis, MB",2026-10-31,invoice,50.00,4.50,54.50,EUR,9.0,posted',
    "GRZ-1,K-1,Ąžuolų baldai UAB,2026-10-20,credit_note,20.00,4.20,24.20,EUR,21,posted",
    "PRK-3,K-1,Ąžuolų baldai UAB,2026-10-21,invoice,10.00,0.00,10.00,USD,,draft",
]


def write_csv(
    folder: Path, rows: list[str], *, header: str = HEADER, bom: str = ""
) -> Path:
    path = folder / "documents.csv"
    path.write_text(bom + "\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def stored(factory: sessionmaker[Session]) -> dict[str, Document]:
    with factory() as session:
        rows = session.scalars(select(Document)).all()
        for row in rows:
            _ = row.lines, row.client
        return {row.number: row for row in rows}


def audit_count(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


def rows_of(factory: sessionmaker[Session]) -> list[tuple[object, ...]]:
    with factory() as session:
        documents = session.execute(
            select(Document.number, Document.fingerprint).order_by(Document.number)
        ).all()
        clients = session.execute(
            select(Client.code, Client.name).order_by(Client.code)
        ).all()
        tasks = session.execute(select(ClientTask.id, ClientTask.state)).all()
        return [*documents, *clients, *tasks]


def add_ready_task(factory: sessionmaker[Session], period: str, code: str) -> int:
    with factory.begin() as session:
        run = Run(
            period=period,
            planned_start=date(2026, 11, 3),
            planned_end=date(2026, 11, 10),
            state=RunState.GENERATED,
        )
        client = session.scalars(select(Client).where(Client.code == code)).one()
        session.add(run)
        session.flush()
        task = ClientTask(run_id=run.id, client_id=client.id, state=TaskState.READY)
        session.add(task)
        session.flush()
        return task.id


def test_documents_csv_stores_rows(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    path = write_csv(tmp_path, ROWS, bom="\ufeff")

    report = import_documents_csv(factory, path, zone=VILNIUS, actor=ACTOR)

    assert (report.created, report.updated, report.unchanged) == (4, 0, 0)
    assert report.clients_created == 2
    documents = stored(factory)
    first = documents["PRK-1"]
    assert (first.net, first.vat, first.gross) == (
        Decimal("100.00"),
        Decimal("21.00"),
        Decimal("121.00"),
    )
    assert [(line.vat_rate, line.net, line.vat) for line in first.lines] == [
        (Decimal("21"), Decimal("100.00"), Decimal("21.00"))
    ]
    assert first.client.name == "Ąžuolų baldai UAB"
    assert documents["PRK-2"].client.name == "Šilelio ūkis, MB"
    assert documents["PRK-2"].lines[0].vat_rate == Decimal("9")
    credit = documents["GRZ-1"]
    assert credit.type == DocumentType.CREDIT_NOTE
    assert (credit.net, credit.vat, credit.gross) == (
        Decimal("-20.00"),
        Decimal("-4.20"),
        Decimal("-24.20"),
    )
    draft = documents["PRK-3"]
    assert draft.status == DocumentStatus.DRAFT
    assert draft.currency == "USD"
    assert draft.lines[0].vat_rate == Decimal(0)


def test_documents_csv_keeps_amounts_as_issued(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    row = "PRK-9,K-1,Ąžuolas,2026-10-05,invoice,100.00,21.00,121.01,EUR,21,posted"

    import_documents_csv(factory, write_csv(tmp_path, [row]), zone=VILNIUS, actor=ACTOR)

    assert stored(factory)["PRK-9"].gross == Decimal("121.01")


def test_documents_csv_reimport_changes_nothing(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    path = write_csv(tmp_path, ROWS)
    import_documents_csv(factory, path, zone=VILNIUS, actor=ACTOR)
    before = rows_of(factory)

    report = import_documents_csv(factory, path, zone=VILNIUS, actor=ACTOR)

    assert (report.created, report.updated, report.unchanged) == (0, 0, 4)
    assert rows_of(factory) == before


def test_documents_csv_posting_a_draft_marks_task_stale(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    import_documents_csv(factory, write_csv(tmp_path, ROWS), zone=VILNIUS, actor=ACTOR)
    task_id = add_ready_task(factory, "2026-10", "K-1")
    posted = [*ROWS[:3], ROWS[3].replace(",draft", ",posted")]

    report = import_documents_csv(
        factory, write_csv(tmp_path, posted), zone=VILNIUS, actor=ACTOR
    )

    assert report.updated == 1
    assert report.stale_tasks == [("2026-10", "K-1")]
    with factory() as session:
        task = session.get_one(ClientTask, task_id)
    assert task.state == TaskState.STALE
    assert task.stale_reason == (
        "invoice PRK-3 changed after the PDF was made; generate the month again"
    )


def test_documents_csv_draft_changes_mark_nothing(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    import_documents_csv(factory, write_csv(tmp_path, ROWS), zone=VILNIUS, actor=ACTOR)
    task_id = add_ready_task(factory, "2026-10", "K-1")
    changed = [
        *ROWS[:3],
        ROWS[3].replace("10.00,0.00,10.00", "12.00,0.00,12.00"),
        "PRK-4,K-1,Ąžuolų baldai UAB,2026-10-22,invoice,1.00,0.21,1.21,EUR,21,draft",
    ]

    report = import_documents_csv(
        factory, write_csv(tmp_path, changed), zone=VILNIUS, actor=ACTOR
    )

    assert (report.created, report.updated) == (1, 1)
    assert report.stale_tasks == []
    with factory() as session:
        assert session.get_one(ClientTask, task_id).state == TaskState.READY


@pytest.fixture(params=["UTC", "Pacific/Kiritimati"], ids=["tz-utc", "tz-plus14"])
def server_zone(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test with the process's own time zone set to another zone."""
    previous = os.environ.get("TZ")
    os.environ["TZ"] = request.param
    time.tzset()
    yield request.param
    if previous is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = previous
    time.tzset()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-10-31T23:30:00+00:00", date(2026, 11, 1)),
        ("2026-10-31T20:59:59Z", date(2026, 10, 31)),
        ("2026-10-31T21:00:00-00:00", date(2026, 10, 31)),
        ("2026-11-01T00:30:00+02:00", date(2026, 11, 1)),
        ("2026-03-29T00:30:00+00:00", date(2026, 3, 29)),
        ("2026-10-31", date(2026, 10, 31)),
    ],
    ids=[
        "utc-late-evening",
        "z-suffix",
        "before-midnight",
        "local-offset",
        "dst-start",
        "plain",
    ],
)
def test_documents_csv_date_is_in_company_zone(
    factory: sessionmaker[Session],
    tmp_path: Path,
    server_zone: str,
    text: str,
    expected: date,
) -> None:
    row = f"PRK-1,K-1,Ąžuolas,{text},invoice,1.00,0.21,1.21,EUR,21,posted"

    import_documents_csv(factory, write_csv(tmp_path, [row]), zone=VILNIUS, actor=ACTOR)

    assert time.tzname[0] != "EET"
    assert stored(factory)["PRK-1"].date == expected


# Each case: the spoiled row, the column named and the value shown.
BAD_ROWS = {
    "unquoted-comma": (
        "PRK-5,K-1,A,2026-10-05,invoice,12,50,0.00,12.50,EUR,21,posted",
        "row",
    ),
    "comma-amount": (
        'PRK-5,K-1,A,2026-10-05,invoice,"12,50",0.00,12.50,EUR,21,posted',
        "net",
    ),
    "text-amount": (
        "PRK-5,K-1,A,2026-10-05,invoice,abc,0.00,1.00,EUR,21,posted",
        "net",
    ),
    "three-decimals": ("PRK-5,K-1,A,2026-10-05,invoice,1.005,0,1,EUR,21,posted", "net"),
    "bad-type": ("PRK-5,K-1,A,2026-10-05,waybill,1.00,0.00,1.00,EUR,21,posted", "type"),
    "bad-status": (
        "PRK-5,K-1,A,2026-10-05,invoice,1.00,0.00,1.00,EUR,21,open",
        "status",
    ),
    "naive-time": (
        "PRK-5,K-1,A,2026-10-05T10:00,invoice,1.00,0,1.00,EUR,21,posted",
        "date",
    ),
    "bad-date": ("PRK-5,K-1,A,05.10.2026,invoice,1.00,0.00,1.00,EUR,21,posted", "date"),
    "bad-currency": (
        "PRK-5,K-1,A,2026-10-05,invoice,1.00,0.00,1.00,eur,21,posted",
        "currency",
    ),
    "bad-rate": (
        "PRK-5,K-1,A,2026-10-05,invoice,1.00,0.21,1.21,EUR,21%,posted",
        "vat_rate",
    ),
    "rate-missing": (
        "PRK-5,K-1,A,2026-10-05,invoice,1.00,0.21,1.21,EUR,,posted",
        "vat_rate",
    ),
    "no-number": (",K-1,A,2026-10-05,invoice,1.00,0.21,1.21,EUR,21,posted", "number"),
    "unknown-nameless": (
        "PRK-5,K-9,,2026-10-05,invoice,1.00,0.21,1.21,EUR,21,posted",
        "client name",
    ),
}


@pytest.mark.parametrize("case", list(BAD_ROWS), ids=list(BAD_ROWS))
def test_documents_csv_bad_row_is_rejected_whole(
    factory: sessionmaker[Session], tmp_path: Path, case: str
) -> None:
    import_documents_csv(factory, write_csv(tmp_path, ROWS), zone=VILNIUS, actor=ACTOR)
    before = rows_of(factory)
    changed = [ROWS[0].replace("100.00", "90.00"), BAD_ROWS[case][0]]

    with pytest.raises(ImportRejectedError) as raised:
        import_documents_csv(
            factory, write_csv(tmp_path, changed), zone=VILNIUS, actor=ACTOR
        )

    [problem] = raised.value.problems
    assert problem.file == "documents.csv"
    assert problem.location == "line 3"
    assert problem.field == BAD_ROWS[case][1]
    assert "line 3" in str(raised.value)
    assert rows_of(factory) == before


def test_documents_csv_lists_every_problem(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    rows = [
        "PRK-1,K-1,A,2026-13-01,invoice,1.00,x,1.00,EUR,21,posted",
        "",
        'PRK-2,K-1,"A, with\nnewline",2026-10-01,note,1.00,0.00,1.00,EUR,21,posted',
        "PRK-1,K-1,A,2026-10-01,invoice,1.00,0.21,1.21,EUR,21,posted",
        "PRK-1,K-1,A,2026-10-02,invoice,1.00,0.21,1.21,EUR,21,posted",
    ]

    with pytest.raises(ImportRejectedError) as raised:
        import_documents_csv(
            factory, write_csv(tmp_path, rows), zone=VILNIUS, actor=ACTOR
        )

    found = [(problem.location, problem.field) for problem in raised.value.problems]
    assert found == [
        ("line 2", "date"),
        ("line 2", "vat"),
        ("line 4", "type"),
        ("line 7", "number"),
    ]
    assert "also on line 6" in raised.value.problems[-1].expected
    assert rows_of(factory) == []


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (HEADER.replace(",vat_rate", ""), "missing columns: 'vat_rate'"),
        (HEADER + ",note", "unknown columns: 'note'"),
        (HEADER.replace("client_name", "name"), "missing columns: 'client_name'"),
    ],
    ids=["missing", "unknown", "renamed"],
)
def test_documents_csv_bad_header_is_rejected(
    factory: sessionmaker[Session], tmp_path: Path, header: str, expected: str
) -> None:
    path = write_csv(tmp_path, ROWS, header=header)

    with pytest.raises(ImportRejectedError) as raised:
        import_documents_csv(factory, path, zone=VILNIUS, actor=ACTOR)

    assert raised.value.problems[0].location == "line 1"
    assert expected in str(raised.value)
    assert rows_of(factory) == []


def test_documents_csv_reads_windows_1257(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    path = tmp_path / "documents.csv"
    path.write_bytes("\n".join([HEADER, ROWS[1]]).encode("cp1257"))

    import_documents_csv(factory, path, zone=VILNIUS, actor=ACTOR)

    assert stored(factory)["PRK-2"].client.name == "Šilelio ūkis, MB"


def test_documents_csv_undecodable_bytes_name_the_line(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    path = tmp_path / "documents.csv"
    # 0x98 is valid neither as UTF-8 on its own nor in windows-1257.
    path.write_bytes("\n".join([HEADER, ROWS[0]]).encode() + b"\nX-\x98,K-1")

    with pytest.raises(ImportRejectedError) as raised:
        import_documents_csv(factory, path, zone=VILNIUS, actor=ACTOR)

    [problem] = raised.value.problems
    assert problem.location == "line 3, byte 3"
    assert "save the whole file as CSV UTF-8" in problem.expected
    assert rows_of(factory) == []


def test_documents_csv_utf8_with_stray_byte_is_rejected(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    path = tmp_path / "documents.csv"
    # 0xE9 is "é" in windows-1257, so the file would otherwise be read in it.
    damaged = ROWS[1].encode().replace(b"MB", b"M\xe9")
    path.write_bytes("\n".join([HEADER, ROWS[0]]).encode() + b"\n" + damaged)

    with pytest.raises(ImportRejectedError) as raised:
        import_documents_csv(factory, path, zone=VILNIUS, actor=ACTOR)

    [problem] = raised.value.problems
    column = damaged.index(b"\xe9") + 1
    assert problem.location == f"line 3, byte {column}"
    assert problem.value == "e9"
    assert "as the file has elsewhere" in problem.expected
    assert rows_of(factory) == []


def test_documents_csv_mixing_encodings_is_rejected(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    pasted = [
        f"PRK-{n},K-{n},Žalgirio ūkininkų kooperatyvas,2026-10-05,invoice,"
        "1.00,0.21,1.21,EUR,21,posted"
        for n in range(10, 40)
    ]
    path = tmp_path / "documents.csv"
    path.write_bytes(
        "\n".join([HEADER, ROWS[0]]).encode()
        + b"\n"
        + "\n".join(pasted).encode("cp1257")
    )

    with pytest.raises(ImportRejectedError) as raised:
        import_documents_csv(factory, path, zone=VILNIUS, actor=ACTOR)

    problems = raised.value.problems
    column = pasted[0].index("Ž") + 1
    assert len(problems) == 21
    assert problems[0].location == f"line 3, byte {column}"
    assert problems[19].location == f"line 22, byte {column}"
    assert problems[20].location == "10 more lines"
    assert rows_of(factory) == []


def test_documents_csv_windows_1257_quotes_are_not_utf8(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    # "Ų“" and "Ų–" are D8 93 and D8 96 in windows-1257: UTF-8 characters
    # on their own, though not Lithuanian ones.
    row = "PRK-7,K-7,UAB „KELIŲ–TILTŲ“ ąčęėįšųūž,2026-10-05,invoice,1,0,1,EUR,0,posted"
    path = tmp_path / "documents.csv"
    path.write_bytes("\n".join([HEADER, row]).encode("cp1257"))

    import_documents_csv(factory, path, zone=VILNIUS, actor=ACTOR)

    assert stored(factory)["PRK-7"].client.name == "UAB „KELIŲ–TILTŲ“ ąčęėįšųūž"


@pytest.mark.parametrize(
    "content",
    [b"", b" \r\n\n", b"\xef\xbb\xbf"],
    ids=["0-bytes", "blank-lines", "bom-only"],
)
def test_documents_csv_empty_file_is_rejected(
    factory: sessionmaker[Session], tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "documents.csv"
    path.write_bytes(content)

    with pytest.raises(ImportRejectedError) as raised:
        import_documents_csv(factory, path, zone=VILNIUS, actor=ACTOR)

    [problem] = raised.value.problems
    assert str(problem) == (
        f"documents.csv is empty: expected a header row {HEADER}, then rows"
    )
    assert audit_count(factory) == 0


def test_documents_csv_dev_null_is_rejected(factory: sessionmaker[Session]) -> None:
    with pytest.raises(ImportRejectedError, match="null is empty"):
        import_documents_csv(factory, "/dev/null", zone=VILNIUS, actor=ACTOR)

    assert audit_count(factory) == 0


def test_documents_csv_header_without_rows_is_accepted(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    path = write_csv(tmp_path, [])

    report = import_documents_csv(factory, path, zone=VILNIUS, actor=ACTOR)

    assert report.total == 0
    assert rows_of(factory) == []


def test_documents_csv_reads_semicolon_separated(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    rows = [ROWS[0].replace(",", ";"), ROWS[1].replace(",", ";")]
    path = write_csv(tmp_path, rows, header=HEADER.replace(",", ";"))

    report = import_documents_csv(factory, path, zone=VILNIUS, actor=ACTOR)

    assert report.created == 2
    assert stored(factory)["PRK-1"].gross == Decimal("121.00")
    assert stored(factory)["PRK-2"].client.name == "Šilelio ūkis; MB"


def test_documents_csv_number_of_another_client_is_rejected(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    first = tmp_path / "first.csv"
    first.write_text(f"{HEADER}\n{ROWS[0].replace('PRK-1,', 'A-2,')}\n")
    import_documents_csv(factory, first, zone=VILNIUS, actor=ACTOR)
    before = rows_of(factory)
    moved = ROWS[0].replace("PRK-1,K-1,", "A-2,C-7,")
    path = tmp_path / "next.csv"
    path.write_text(f"{HEADER}\n{ROWS[1]}\n{moved}\n")

    with pytest.raises(ImportRejectedError) as raised:
        import_documents_csv(factory, path, zone=VILNIUS, actor=ACTOR)

    [problem] = raised.value.problems
    assert str(problem) == (
        "next.csv, line 3: number 'A-2' is invalid: expected a number not "
        "already used by client K-1 (imported from first.csv)"
    )
    assert rows_of(factory) == before
    assert stored(factory)["A-2"].client.code == "K-1"


def test_documents_csv_number_from_isaf_keeps_its_client(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    good = write_isaf(tmp_path, [invoice("A-2", customer="C-1")], name="good.xml")
    import_isaf(factory, [good], actor=ACTOR)
    path = write_csv(tmp_path, [ROWS[0].replace("PRK-1,K-1,", "A-2,C-7,")])

    with pytest.raises(ImportRejectedError) as raised:
        import_documents_csv(factory, path, zone=VILNIUS, actor=ACTOR)

    assert raised.value.problems[0].expected == (
        "a number not already used by client C-1 (imported from good.xml)"
    )
    assert stored(factory)["A-2"].client.code == "C-1"
    assert "C-7" not in {code for code, *_ in rows_of(factory)}


def test_documents_csv_control_characters_become_spaces(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    row = 'PRK-\x071,K-1,"Ąžuolų\tbaldai\r\n UAB",2026-10-05,invoice,1,0,1,EUR,,posted'
    path = write_csv(tmp_path, [row])

    import_documents_csv(factory, path, zone=VILNIUS, actor=ACTOR)

    [document] = stored(factory).values()
    assert document.number == "PRK-1"
    assert document.client.name == "Ąžuolų baldai UAB"
