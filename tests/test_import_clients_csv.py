"""Clients CSV import: creating, updating, addresses, exclusion and rejections."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from services.errors import ImportRejectedError
from services.imports import import_clients_csv
from services.models import AuditEvent, Client, ClientTask, Run, TaskState

ACTOR = "cli:test"
HEADER = "code,name,email,language,address,exclude"
ROWS = [
    "K-1,UAB „Ąžuolų baldai“,apskaita@azuolas.lt;vadove@azuolas.lt,lt,"
    '"Vilniaus g. 1, Vilnius",',
    'K-2,"Šilelio ūkis, MB",,,"Miško g. 5, Utena",',
    "K-3,Trading OÜ,accounts@trading.ee,en,Tartu mnt 2,no",
    "K-4,UAB Neaktyvus,info@neaktyvus.lt,lt,,yes",
]


def write_csv(folder: Path, rows: list[str], *, header: str = HEADER) -> Path:
    path = folder / "clients.csv"
    path.write_text("\ufeff" + "\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def clients(factory: sessionmaker[Session]) -> dict[str, Client]:
    with factory() as session:
        query = select(Client).options(selectinload(Client.emails))
        return {client.code: client for client in session.scalars(query)}


def audit_count(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


def rows_of(factory: sessionmaker[Session]) -> list[tuple[object, ...]]:
    return [
        (
            client.code,
            client.name,
            client.language,
            client.address,
            client.excluded,
            client.exclude_reason,
            tuple(client.email_addresses),
            client.updated_at,
        )
        for client in sorted(clients(factory).values(), key=lambda client: client.code)
    ]


def test_clients_csv_creates_clients(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    report = import_clients_csv(factory, write_csv(tmp_path, ROWS), actor=ACTOR)

    assert (report.created, report.updated, report.unchanged) == (4, 0, 0)
    found = clients(factory)
    first = found["K-1"]
    assert first.name == "UAB „Ąžuolų baldai“"
    assert first.name_folded == "uab „ąžuolų baldai“"
    assert first.email_addresses == ["apskaita@azuolas.lt", "vadove@azuolas.lt"]
    assert first.address == "Vilniaus g. 1, Vilnius"
    assert found["K-2"].name == "Šilelio ūkis, MB"
    assert found["K-2"].language == "lt"
    assert found["K-2"].email_addresses == []
    assert found["K-3"].language == "en"
    assert found["K-3"].excluded is False
    assert found["K-4"].excluded is True
    assert found["K-4"].exclude_reason == "excluded in the clients file"


def test_clients_csv_reimport_changes_nothing(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    path = write_csv(tmp_path, ROWS)
    import_clients_csv(factory, path, actor=ACTOR)
    before = rows_of(factory)

    report = import_clients_csv(factory, path, actor=ACTOR)

    assert (report.created, report.updated, report.unchanged) == (0, 0, 4)
    assert rows_of(factory) == before


@pytest.mark.parametrize(
    ("text", "excluded", "reason"),
    [
        ("", False, ""),
        ("ne", False, ""),
        ("FALSE", False, ""),
        ("0", False, ""),
        ("taip", True, "excluded in the clients file"),
        ("X", True, "excluded in the clients file"),
        ("1", True, "excluded in the clients file"),
        ("bankrutavo 2026-09", True, "bankrutavo 2026-09"),
    ],
    ids=["empty", "ne", "false", "zero", "taip", "x", "one", "reason"],
)
def test_clients_csv_reads_exclude(
    factory: sessionmaker[Session],
    tmp_path: Path,
    text: str,
    excluded: bool,
    reason: str,
) -> None:
    path = write_csv(tmp_path, [f"K-1,Ąžuolas,,lt,,{text}"])

    import_clients_csv(factory, path, actor=ACTOR)

    client = clients(factory)["K-1"]
    assert client.excluded is excluded
    assert client.exclude_reason == reason


def test_clients_csv_new_addresses_reach_unsent_tasks(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    import_clients_csv(factory, write_csv(tmp_path, ROWS), actor=ACTOR)
    with factory.begin() as session:
        client = session.scalars(select(Client).where(Client.code == "K-2")).one()
        run = Run(
            period="2026-10",
            planned_start=date(2026, 11, 3),
            planned_end=date(2026, 11, 9),
        )
        session.add(run)
        session.flush()
        task = ClientTask(
            run_id=run.id, client_id=client.id, state=TaskState.MISSING_EMAIL
        )
        session.add(task)
        session.flush()
        task_id = task.id
    changed = [
        ROWS[0],
        'K-2,"Šilelio ūkis, MB",ona@silelis.lt,,"Miško g. 5, Utena",',
        *ROWS[2:],
    ]

    report = import_clients_csv(factory, write_csv(tmp_path, changed), actor=ACTOR)

    assert (report.created, report.updated, report.unchanged) == (0, 1, 3)
    assert report.tasks_updated == 1
    with factory() as session:
        stored = session.get_one(ClientTask, task_id)
    assert stored.state == TaskState.READY
    assert stored.recipients == ["ona@silelis.lt"]


def test_clients_csv_updates_name_and_language(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    import_clients_csv(factory, write_csv(tmp_path, ROWS), actor=ACTOR)
    renamed = [
        *ROWS[:2],
        "K-3,Trading AS,accounts@trading.ee,lt,Tartu mnt 2,no",
        ROWS[3],
    ]

    report = import_clients_csv(factory, write_csv(tmp_path, renamed), actor=ACTOR)

    assert report.updated == 1
    client = clients(factory)["K-3"]
    assert client.name == "Trading AS"
    assert client.name_folded == "trading as"
    assert client.language == "lt"


# Each case: the spoiled row and the column the error names.
BAD_ROWS = {
    "invalid-address": (
        "K-5,Naujas,ok@naujas.lt;ne-adresas,lt,,",
        "email",
        "ok@naujas.lt;ne-adresas",
    ),
    "language": ("K-5,Naujas,,ru,,", "language", "ru"),
    "no-code": (",Naujas,,lt,,", "code", ""),
    "no-name": ("K-5,,,lt,,", "name", ""),
    "field-count": ("K-5,Naujas,lt,,", "row", "K-5,Naujas,lt,,"),
}


@pytest.mark.parametrize("case", list(BAD_ROWS), ids=list(BAD_ROWS))
def test_clients_csv_bad_row_is_rejected_whole(
    factory: sessionmaker[Session], tmp_path: Path, case: str
) -> None:
    import_clients_csv(factory, write_csv(tmp_path, ROWS), actor=ACTOR)
    before = rows_of(factory)
    row, field, value = BAD_ROWS[case]
    changed = [ROWS[0].replace("Vilniaus", "Kauno"), ROWS[1], row]

    with pytest.raises(ImportRejectedError) as raised:
        import_clients_csv(factory, write_csv(tmp_path, changed), actor=ACTOR)

    [problem] = raised.value.problems
    assert (problem.file, problem.location, problem.field) == (
        "clients.csv",
        "line 4",
        field,
    )
    assert problem.value == value
    assert f"clients.csv, line 4: {field} {value!r}" in str(raised.value)
    assert rows_of(factory) == before


def test_clients_csv_invalid_address_message(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    path = write_csv(tmp_path, ["K-5,Naujas,ok@naujas.lt;vardas@,lt,,"])

    with pytest.raises(ImportRejectedError) as raised:
        import_clients_csv(factory, path, actor=ACTOR)

    [problem] = raised.value.problems
    assert problem.value == "ok@naujas.lt;vardas@"
    assert problem.expected.startswith(
        "e-mail addresses such as accounts@example.com separated by ';' ('vardas@': "
    )
    assert clients(factory) == {}


def test_clients_csv_single_invalid_address_message(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    path = tmp_path / "badmail.csv"
    path.write_text(f"{HEADER}\nK-5,Naujas,not-an-email,lt,,\n", encoding="utf-8")

    with pytest.raises(ImportRejectedError) as raised:
        import_clients_csv(factory, path, actor=ACTOR)

    assert str(raised.value.problems[0]) == (
        "badmail.csv, line 2: email 'not-an-email' is invalid: expected an e-mail "
        "address such as accounts@example.com (An email address must have an "
        "@-sign.)"
    )


def test_clients_csv_takes_address_of_named_entry(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    path = write_csv(tmp_path, ['K-5,Naujas,"Jonas <j@b.lt>, p@b.lt",lt,,'])

    import_clients_csv(factory, path, actor=ACTOR)

    assert clients(factory)["K-5"].email_addresses == ["j@b.lt", "p@b.lt"]


@pytest.mark.parametrize(
    "content", [b"", b"\xef\xbb\xbf\n"], ids=["0-bytes", "bom-and-newline"]
)
def test_clients_csv_empty_file_is_rejected(
    factory: sessionmaker[Session], tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "clients.csv"
    path.write_bytes(content)

    with pytest.raises(ImportRejectedError) as raised:
        import_clients_csv(factory, path, actor=ACTOR)

    assert str(raised.value.problems[0]) == (
        f"clients.csv is empty: expected a header row {HEADER}, then rows"
    )
    assert audit_count(factory) == 0


def test_clients_csv_header_without_rows_is_accepted(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    path = write_csv(tmp_path, [])

    report = import_clients_csv(factory, path, actor=ACTOR)

    assert report.total == 0
    assert audit_count(factory) == 1


def test_clients_csv_text_is_on_one_line(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    row = 'K-1,"UAB\tĄžuolas\x0b",,lt,"Vilniaus g. 1\r\nVilnius\x00",'
    path = write_csv(tmp_path, [row])

    import_clients_csv(factory, path, actor=ACTOR)

    client = clients(factory)["K-1"]
    assert client.name == "UAB Ąžuolas"
    assert client.address == "Vilniaus g. 1 Vilnius"


def test_clients_csv_repeated_code_is_rejected(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    path = write_csv(tmp_path, [ROWS[0], ROWS[1], ROWS[0].replace("lt,", "en,", 1)])

    with pytest.raises(ImportRejectedError) as raised:
        import_clients_csv(factory, path, actor=ACTOR)

    [problem] = raised.value.problems
    assert problem.location == "line 4"
    assert "also on line 2" in problem.expected


def test_clients_csv_missing_column_is_rejected(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path, ["K-1,Ąžuolas,,lt,"], header="code,name,email,language,address"
    )

    with pytest.raises(ImportRejectedError, match="missing columns: 'exclude'"):
        import_clients_csv(factory, path, actor=ACTOR)
