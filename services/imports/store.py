"""Store imported documents in bulk and mark the client tasks they affect stale."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.orm import Session

from services import audit
from services.clients import fold_name
from services.errors import ImportProblem, ImportRejectedError
from services.imports.records import ParsedClient, ParsedDocument
from services.imports.report import ImportReport
from services.models import (
    Client,
    ClientTask,
    Document,
    DocumentLine,
    DocumentStatus,
    Run,
    TaskState,
    utcnow,
)
from services.periods import Period
from services.progress import Progress, no_progress

logger = logging.getLogger(__name__)

# Rows per IN list, INSERT or UPDATE batch: well under SQLite's and
# PostgreSQL's parameter limits, and few enough round trips for a large file.
CHUNK = 500
# Inserted documents after which PostgreSQL's statistics are refreshed.
ANALYZE_AFTER_ROWS = 10_000

# Task states whose PDF may be rebuilt, so a document change makes them stale.
STALEABLE_STATES = frozenset(
    {TaskState.READY, TaskState.MISSING_EMAIL, TaskState.FAILED}
)

T = TypeVar("T")


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(frozen=True)
class _Stored:
    """The fields of a stored document that decide what a change affects."""

    id: int
    client_id: int
    client_code: str
    date: date
    status: DocumentStatus
    fingerprint: str
    source_file: str


@dataclass(frozen=True)
class _Change:
    """A document added or changed, with its client and date before and after."""

    description: str
    places: tuple[tuple[int, str], ...]


def store_documents(
    session: Session,
    documents: list[ParsedDocument],
    clients: dict[str, ParsedClient],
    report: ImportReport,
    *,
    actor: str,
    progress: Progress | None = None,
) -> None:
    """Create, update or leave each document, and mark affected tasks stale.

    Raise `ImportRejectedError` before writing anything when a document names a
    client that is not known yet and the file gives no name for it, or when its
    number is already stored for another client.
    """
    stored = _load_stored(session, [document.number for document in documents])
    _reject_other_clients_numbers(documents, stored)
    client_ids = _ensure_clients(session, clients, report)

    new: list[ParsedDocument] = []
    changed: list[tuple[ParsedDocument, _Stored]] = []
    for document in documents:
        previous = stored.get(document.number)
        if previous is None:
            new.append(document)
        elif previous.fingerprint != document.fingerprint:
            changed.append((document, previous))
    report.created += len(new)
    report.updated += len(changed)
    report.unchanged += len(documents) - len(new) - len(changed)

    report_progress = progress or no_progress
    total = len(new) + len(changed)
    report_progress(0, total, "storing documents")
    done = 0
    for batch in chunks(new):
        _insert_documents(session, batch, client_ids)
        done += len(batch)
        report_progress(done, total, "storing documents")
    for pairs in chunks(changed):
        _update_documents(session, pairs, client_ids)
        done += len(pairs)
        report_progress(done, total, "storing documents")

    changes = [_describe(document, None, client_ids) for document in new]
    changes += [_describe(doc, previous, client_ids) for doc, previous in changed]
    _mark_tasks_stale(session, [change for change in changes if change], report, actor)
    _refresh_statistics(session, len(new))


def _refresh_statistics(session: Session, inserted: int) -> None:
    """Let PostgreSQL's planner see a large import before generation queries it.

    Autovacuum re-analyzes a table only after a share of it changed, so a
    month added to a year of documents can leave the planner choosing a slow
    index for that month.
    """
    on_postgresql = session.get_bind().dialect.name == "postgresql"
    if on_postgresql and inserted >= ANALYZE_AFTER_ROWS:
        session.execute(text("ANALYZE documents"))
        session.execute(text("ANALYZE document_lines"))


def _reject_other_clients_numbers(
    documents: list[ParsedDocument], stored: dict[str, _Stored]
) -> None:
    """Reject documents whose number another client's stored document has.

    Document numbers are unique across clients, so such a row is a typing
    error or a number reused by the ERP, and storing it would move the
    stored document and its amounts to another client's statement.
    """
    problems = []
    for document in documents:
        previous = stored.get(document.number)
        if previous is None or previous.client_code == document.client_code:
            continue
        origin = f" (imported from {previous.source_file})"
        problems.append(
            ImportProblem(
                document.source_file,
                document.location,
                document.number_field,
                document.number,
                f"a number not already used by client {previous.client_code}"
                + (origin if previous.source_file else ""),
            )
        )
    if problems:
        files = ", ".join(sorted({problem.file for problem in problems}))
        raise ImportRejectedError(files, problems)


def _ensure_clients(
    session: Session, clients: dict[str, ParsedClient], report: ImportReport
) -> dict[str, int]:
    """Return the id of every client code, creating the unknown clients."""
    ids: dict[str, int] = {}
    codes = sorted(clients)
    for batch in chunks(codes):
        for client in session.scalars(select(Client).where(Client.code.in_(batch))):
            ids[client.code] = client.id
            if _complete_client(client, clients[client.code]):
                report.clients_updated += 1

    unknown = [clients[code] for code in codes if code not in ids]
    nameless = [client for client in unknown if not client.name]
    if nameless:
        raise ImportRejectedError(
            ", ".join(sorted({client.file for client in nameless})),
            [
                ImportProblem(
                    client.file,
                    client.location,
                    "client name",
                    "",
                    f"the name of client {client.code}, which is not known yet",
                )
                for client in nameless
            ],
        )

    for new_clients in chunks(unknown):
        rows = [_new_client_row(client) for client in new_clients]
        result = session.execute(insert(Client).returning(Client.code, Client.id), rows)
        for code, client_id in result:
            ids[code] = client_id
    report.clients_created += len(unknown)
    return ids


def _new_client_row(client: ParsedClient) -> dict[str, Any]:
    now = utcnow()
    return {
        "code": client.code,
        "name": client.name,
        "name_folded": fold_name(client.name),
        "language": "lt" if client.country in ("", "LT") else "en",
        "address": "",
        "registration_code": client.registration_code,
        "vat_code": client.vat_code,
        "country": client.country,
        "excluded": False,
        "exclude_reason": "",
        "created_at": now,
        "updated_at": now,
    }


def _complete_client(client: Client, parsed: ParsedClient) -> bool:
    """Fill a known client's empty codes; its name and addresses stay as they are."""
    changed = False
    for name in ("registration_code", "vat_code", "country"):
        value = getattr(parsed, name)
        if value and not getattr(client, name):
            setattr(client, name, value)
            changed = True
    return changed


def _load_stored(session: Session, numbers: list[str]) -> dict[str, _Stored]:
    stored: dict[str, _Stored] = {}
    for batch in chunks(numbers):
        query = (
            select(
                Document.number,
                Document.id,
                Document.client_id,
                Client.code,
                Document.date,
                Document.status,
                Document.fingerprint,
                Document.source_file,
            )
            .join(Client, Document.client_id == Client.id)
            .where(Document.number.in_(batch))
        )
        for row in session.execute(query):
            stored[row.number] = _Stored(
                row.id,
                row.client_id,
                row.code,
                row.date,
                row.status,
                row.fingerprint,
                row.source_file,
            )
    return stored


def _document_row(
    document: ParsedDocument, client_ids: dict[str, int]
) -> dict[str, Any]:
    return {
        "number": document.number,
        "client_id": client_ids[document.client_code],
        "date": document.date,
        "type": document.type,
        "source_type": document.source_type,
        "status": document.status,
        "currency": document.currency,
        "net": document.net,
        "vat": document.vat,
        "gross": document.gross,
        "fingerprint": document.fingerprint,
        "source_file": document.source_file,
        "updated_at": utcnow(),
    }


def _line_rows(document_id: int, document: ParsedDocument) -> list[dict[str, Any]]:
    return [
        {
            "document_id": document_id,
            "position": position,
            "vat_rate": line.vat_rate,
            "tax_code": line.tax_code,
            "net": line.net,
            "vat": line.vat,
        }
        for position, line in enumerate(document.lines)
    ]


def _insert_documents(
    session: Session, batch: Sequence[ParsedDocument], client_ids: dict[str, int]
) -> None:
    now = utcnow()
    rows = [
        _document_row(document, client_ids) | {"created_at": now} for document in batch
    ]
    # The ids come back by number because RETURNING kept in parameter order
    # runs one statement per row on SQLite, and a SELECT of the new rows by
    # number can fall back to a sequential scan on PostgreSQL inside the
    # transaction that filled the table.
    statement = insert(Document).returning(Document.number, Document.id)
    ids: dict[str, int] = dict(session.execute(statement, rows).all())
    lines = [
        row for document in batch for row in _line_rows(ids[document.number], document)
    ]
    if lines:
        session.execute(insert(DocumentLine), lines)


def _update_documents(
    session: Session,
    pairs: Sequence[tuple[ParsedDocument, _Stored]],
    client_ids: dict[str, int],
) -> None:
    rows = [
        _document_row(document, client_ids) | {"id": previous.id}
        for document, previous in pairs
    ]
    session.execute(update(Document), rows)

    ids = [previous.id for _, previous in pairs]
    session.execute(
        delete(DocumentLine).where(DocumentLine.document_id.in_(ids)),
        execution_options={"synchronize_session": False},
    )
    lines = [
        row for document, previous in pairs for row in _line_rows(previous.id, document)
    ]
    if lines:
        session.execute(insert(DocumentLine), lines)


def _describe(
    document: ParsedDocument, previous: _Stored | None, client_ids: dict[str, int]
) -> _Change | None:
    """Say how a document changed, or return None when no statement shows it."""
    posted = DocumentStatus.POSTED
    was_posted = previous is not None and previous.status == posted
    if document.status != posted and not was_posted:
        return None

    label = f"{document.type.value.replace('_', ' ')} {document.number}"
    if previous is None:
        verb = "added"
    elif was_posted and document.status == DocumentStatus.CANCELLED:
        verb = "cancelled"
    elif was_posted and document.status == DocumentStatus.DRAFT:
        verb = "returned to draft"
    else:
        verb = "changed"

    places = {(client_ids[document.client_code], str(Period.of(document.date)))}
    if previous is not None:
        places.add((previous.client_id, str(Period.of(previous.date))))
    return _Change(f"{label} {verb}", tuple(sorted(places)))


def _summarize(descriptions: list[str]) -> str:
    shown = ", ".join(descriptions[:3])
    rest = len(descriptions) - 3
    return f"{shown} and {rest} more documents" if rest > 0 else shown


def _mark_tasks_stale(
    session: Session, changes: list[_Change], report: ImportReport, actor: str
) -> None:
    """Mark stale every unsent task whose client and period a change touches.

    Tasks already sent, in sending, with an unknown outcome or skipped keep
    their state, and the change is recorded in the audit trail instead.
    """
    by_place: dict[tuple[int, str], list[str]] = {}
    for change in changes:
        for place in change.places:
            by_place.setdefault(place, []).append(change.description)
    if not by_place:
        return

    periods = sorted({period for _, period in by_place})
    query = (
        select(ClientTask, Run.period, Client.code)
        .join(Run, ClientTask.run_id == Run.id)
        .join(Client, ClientTask.client_id == Client.id)
        .where(Run.period.in_(periods))
        .order_by(Run.period, Client.code)
    )
    for task, period, code in session.execute(query):
        descriptions = by_place.get((task.client_id, period))
        if descriptions is None:
            continue
        summary = _summarize(descriptions)
        if task.state in STALEABLE_STATES:
            task.state = TaskState.STALE
            task.stale_reason = (
                f"{summary} after the PDF was made; generate the month again"
            )
            report.stale_tasks.append((period, code))
        elif task.state != TaskState.STALE:
            _record_change_after_sending(session, task, period, code, summary, actor)
            report.changed_after_sending.append((period, code, task.state.value))


def _record_change_after_sending(
    session: Session,
    task: ClientTask,
    period: str,
    code: str,
    summary: str,
    actor: str,
) -> None:
    state = task.state.value
    audit.record(
        session,
        actor=actor,
        action="document changed after sending",
        period=period,
        client_code=code,
        detail=(
            f"{summary} while the client task was {state}; the task keeps its "
            "state and nothing is resent, so tell the client if the change matters"
        ),
    )
    logger.warning(
        "documents of client %s changed while its %s task was %s", code, period, state
    )
