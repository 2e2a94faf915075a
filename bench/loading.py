"""Load the synthetic history straight through the driver: COPY or executemany.

No ORM object is made per row. Ids are given explicitly so that documents and
their lines can be written in one pass, and PostgreSQL's sequences are moved
past them afterwards.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import Engine
from synthetic import TARGET_MONTH, YEAR, Company, SyntheticClient, SyntheticDocument

from services.clients import fold_name
from services.periods import Period

CREATED = "2026-01-01 00:00:00.000000"
CREATED_POSTGRES = "2026-01-01 00:00:00+00"
BATCH = 20_000

CLIENT_COLUMNS = (
    "id",
    "code",
    "name",
    "name_folded",
    "language",
    "address",
    "registration_code",
    "vat_code",
    "country",
    "excluded",
    "exclude_reason",
    "created_at",
    "updated_at",
)
EMAIL_COLUMNS = ("id", "client_id", "address", "address_folded", "position")
DOCUMENT_COLUMNS = (
    "id",
    "number",
    "client_id",
    "date",
    "type",
    "source_type",
    "status",
    "currency",
    "net",
    "vat",
    "gross",
    "fingerprint",
    "source_file",
    "created_at",
    "updated_at",
)
LINE_COLUMNS = ("id", "document_id", "position", "vat_rate", "tax_code", "net", "vat")


def load_history(
    engine: Engine, company: Company, clients: list[SyntheticClient]
) -> dict[str, int]:
    """Store the clients and every month but the target month; return row counts."""
    postgres = engine.dialect.name == "postgresql"
    created = CREATED_POSTGRES if postgres else CREATED
    write = _copy if postgres else _executemany
    counts = {"clients": len(clients), "documents": 0, "lines": 0}

    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if not postgres:
            cursor.execute("PRAGMA synchronous=OFF")
        write(cursor, "clients", CLIENT_COLUMNS, _client_rows(clients, created))
        write(cursor, "client_emails", EMAIL_COLUMNS, _email_rows(clients))

        first_id = 1
        line_ids = iter(range(1, 10**9))
        for month in range(1, TARGET_MONTH.month):
            period = Period(YEAR, month)
            documents = list(company.documents(clients, period, first_id))
            first_id += len(documents)
            counts["documents"] += len(documents)
            lines = list(_line_rows(documents, line_ids))
            counts["lines"] += len(lines)
            write(
                cursor,
                "documents",
                DOCUMENT_COLUMNS,
                _document_rows(documents, created),
            )
            write(cursor, "document_lines", LINE_COLUMNS, lines)

        if postgres:
            for table in ("clients", "client_emails", "documents", "document_lines"):
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                    f"(SELECT max(id) FROM {table}))"
                )
        raw.commit()
        cursor.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()
    return counts


def next_document_id(engine: Engine) -> int:
    with engine.connect() as connection:
        value = connection.exec_driver_sql("SELECT max(id) FROM documents").scalar()
    return int(value or 0) + 1


def _copy(
    cursor: Any, table: str, columns: tuple[str, ...], rows: Iterable[tuple[Any, ...]]
) -> None:
    names = ", ".join(columns)
    with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _executemany(
    cursor: Any, table: str, columns: tuple[str, ...], rows: Iterable[tuple[Any, ...]]
) -> None:
    names = ", ".join(columns)
    marks = ", ".join("?" for _ in columns)
    statement = f"INSERT INTO {table} ({names}) VALUES ({marks})"  # noqa: S608
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH:
            cursor.executemany(statement, batch)
            batch.clear()
    if batch:
        cursor.executemany(statement, batch)


def _client_rows(
    clients: list[SyntheticClient], created: str
) -> Iterator[tuple[Any, ...]]:
    for client in clients:
        reason = "Atsiskaito grynaisiais, sąrašo nereikia" if client.excluded else ""
        yield (
            client.id,
            client.code,
            client.name,
            fold_name(client.name),
            client.language,
            client.address,
            client.registration_code,
            client.vat_code,
            client.country,
            client.excluded,
            reason,
            created,
            created,
        )


def _email_rows(clients: list[SyntheticClient]) -> Iterator[tuple[Any, ...]]:
    email_id = 0
    for client in clients:
        for position, address in enumerate(client.emails):
            email_id += 1
            yield (email_id, client.id, address, address.casefold(), position)


def _document_rows(
    documents: list[SyntheticDocument], created: str
) -> Iterator[tuple[Any, ...]]:
    for doc in documents:
        fingerprint = hashlib.sha256(
            f"{doc.number}|{doc.date}|{doc.gross}".encode()
        ).hexdigest()
        yield (
            doc.id,
            doc.number,
            doc.client_id,
            doc.date.isoformat(),
            doc.type,
            doc.source_type,
            doc.status,
            "EUR",
            str(doc.net),
            str(doc.vat),
            str(doc.gross),
            fingerprint,
            "bench",
            created,
            created,
        )


def _line_rows(
    documents: list[SyntheticDocument], line_ids: Iterator[int]
) -> Iterator[tuple[Any, ...]]:
    for doc in documents:
        for position, line in enumerate(doc.lines):
            yield (
                next(line_ids),
                doc.id,
                position,
                str(line.vat_rate),
                line.tax_code,
                str(line.net),
                str(line.vat),
            )
