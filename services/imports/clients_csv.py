"""Import the clients directory: names, languages, addresses and exclusions."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from services import audit
from services.addresses import EXAMPLE, InvalidAddressError, parse_addresses
from services.clients import apply_exclusion, replace_client_emails, set_client_name
from services.db import transaction
from services.errors import ImportProblem, ImportRejectedError
from services.imports.csv_rows import CsvRow, read_rows
from services.imports.report import ImportReport
from services.imports.store import chunks
from services.models import Client

logger = logging.getLogger(__name__)

COLUMNS = ("code", "name", "email", "language", "address", "exclude")
LANGUAGES = ("lt", "en")
_NOT_EXCLUDED = frozenset({"", "no", "false", "0", "ne"})
_EXCLUDED = frozenset({"yes", "true", "1", "taip", "x"})
EXCLUDED_IN_FILE = "excluded in the clients file"


@dataclass(frozen=True)
class ClientRow:
    """One client as the clients file gives it."""

    code: str
    name: str
    emails: tuple[str, ...]
    language: str
    address: str
    excluded: bool
    exclude_reason: str
    location: str


def parse_exclude(text: str) -> tuple[bool, str]:
    """Read the `exclude` column: a yes or no word, or else the reason itself."""
    word = text.strip()
    if word.lower() in _NOT_EXCLUDED:
        return False, ""
    if word.lower() in _EXCLUDED:
        return True, EXCLUDED_IN_FILE
    return True, word


def _read_row(file: str, row: CsvRow, problems: list[ImportProblem]) -> ClientRow:
    location = f"line {row.line}"

    def problem(column: str, expected: str) -> None:
        problems.append(ImportProblem(file, location, column, row[column], expected))

    for column, limit in (("code", 64), ("name", 500)):
        if not row[column]:
            problem(column, f"the client's {column}; the value is empty")
        elif len(row[column]) > limit:
            problem(column, f"at most {limit} characters")

    emails: list[str] = []
    try:
        emails = parse_addresses(row["email"])
    except InvalidAddressError as error:
        problem("email", _address_expected(row["email"], error))

    language = row["language"].lower() or "lt"
    if language not in LANGUAGES:
        problem("language", "lt or en, or empty for lt")

    excluded, reason = parse_exclude(row["exclude"])
    return ClientRow(
        code=row["code"],
        name=row["name"],
        emails=tuple(emails),
        language=language,
        address=row["address"],
        excluded=excluded,
        exclude_reason=reason,
        location=location,
    )


def _address_expected(value: str, error: InvalidAddressError) -> str:
    if error.address == value:
        return f"an e-mail address such as {EXAMPLE} ({error.reason})"
    return (
        f"e-mail addresses such as {EXAMPLE} separated by ';' "
        f"({error.address!r}: {error.reason})"
    )


def _read_clients(path: Path) -> tuple[list[ClientRow], list[ImportProblem]]:
    file = path.name
    problems: list[ImportProblem] = []
    rows: dict[str, ClientRow] = {}
    for row in read_rows(path, COLUMNS, problems):
        client = _read_row(file, row, problems)
        first = rows.setdefault(client.code, client)
        if first is not client and first != _with_location(client, first.location):
            problems.append(
                ImportProblem(
                    file,
                    client.location,
                    "code",
                    client.code,
                    f"a code used once; it is also on {first.location} with "
                    "different values",
                )
            )
    return list(rows.values()), problems


def _with_location(row: ClientRow, location: str) -> ClientRow:
    return ClientRow(**{**row.__dict__, "location": location})


def _apply_row(session: Session, client: Client, row: ClientRow) -> None:
    set_client_name(client, row.name)
    client.language = row.language
    client.address = row.address
    was_excluded = client.excluded
    client.excluded = row.excluded
    client.exclude_reason = row.exclude_reason
    if client.id is not None and was_excluded != row.excluded:
        apply_exclusion(session, client)


def _matches(client: Client, row: ClientRow) -> bool:
    return (
        client.name == row.name
        and client.language == row.language
        and client.address == row.address
        and client.excluded == row.excluded
        and client.exclude_reason == row.exclude_reason
        and client.email_addresses == list(row.emails)
    )


def _store_row(
    session: Session, client: Client | None, row: ClientRow, report: ImportReport
) -> None:
    if client is not None and _matches(client, row):
        report.unchanged += 1
        return
    if client is None:
        client = Client(code=row.code)
        session.add(client)
        report.created += 1
    else:
        report.updated += 1

    _apply_row(session, client, row)
    if client.email_addresses != list(row.emails):
        report.tasks_updated += replace_client_emails(session, client, list(row.emails))


def import_clients_csv(
    factory: sessionmaker[Session], path: Path | str, *, actor: str
) -> ImportReport:
    """Create or update the clients in a clients CSV file, all or nothing.

    The file owns each client's name, language, address, e-mail addresses and
    exclusion, so a client excluded by hand is included again when its row
    leaves `exclude` empty. New addresses reach every unsent task of the client.
    Raise `ImportRejectedError` listing every problem when the file has any.
    """
    source = Path(path)
    rows, problems = _read_clients(source)
    if problems:
        raise ImportRejectedError(source.name, problems)

    report = ImportReport(files=[source.name], kind="clients")
    with transaction(factory) as session:
        existing: dict[str, Client] = {}
        for batch in chunks([row.code for row in rows]):
            query = (
                select(Client)
                .options(selectinload(Client.emails))
                .where(Client.code.in_(batch))
            )
            existing.update((client.code, client) for client in session.scalars(query))

        for row in rows:
            _store_row(session, existing.get(row.code), row, report)

        audit.record(
            session,
            actor=actor,
            action="clients imported",
            detail=report.summary_line(),
        )
    logger.info("clients import: %s", report.summary_line())
    return report
