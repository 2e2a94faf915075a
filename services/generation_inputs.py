"""Load the clients and posted documents of a month for generation."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from services.models import Client, Document, DocumentStatus
from services.periods import Period


def _active_clients(session: Session, period: Period) -> dict[int, int]:
    """Return client id to the count of its posted documents in `period`."""
    rows = session.execute(
        # count() rather than count(id) lets PostgreSQL answer from the index.
        select(Document.client_id, func.count())
        .where(
            Document.status == DocumentStatus.POSTED,
            Document.date >= period.start,
            Document.date < period.end,
        )
        .group_by(Document.client_id)
    )
    return {row[0]: row[1] for row in rows}


def _load_clients(session: Session, client_ids: list[int]) -> dict[int, Client]:
    clients: dict[int, Client] = {}
    for batch in _chunks(client_ids, 1000):
        query = (
            select(Client)
            .where(Client.id.in_(batch))
            .options(selectinload(Client.emails))
        )
        for client in session.scalars(query):
            clients[client.id] = client
    return clients


def _load_documents(
    factory: sessionmaker[Session], client_ids: list[int], period: Period
) -> dict[int, list[Document]]:
    """Load the posted documents of many clients with their lines in one query."""
    grouped: dict[int, list[Document]] = defaultdict(list)
    with factory() as session:
        query = (
            select(Document)
            .where(
                Document.client_id.in_(client_ids),
                Document.status == DocumentStatus.POSTED,
                Document.date >= period.start,
                Document.date < period.end,
            )
            .options(selectinload(Document.lines))
        )
        for document in session.scalars(query):
            grouped[document.client_id].append(document)
    return grouped


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
