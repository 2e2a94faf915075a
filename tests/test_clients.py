"""Clients: lookup by code or name, addresses reaching unsent tasks, exclusion."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from services.clients import (
    exclude_client,
    find_client,
    include_client,
    set_client_emails,
    set_client_name,
)
from services.errors import InvalidEmailError, InvalidStateError, NotFoundError
from services.models import AuditEvent, Client, ClientEmail, ClientTask, Run, TaskState

ACTOR = "cli:test"
NAMES = {
    "K-0001": "UAB „Pavyzdžių prekyba“",
    "K-0002": "Šilelio ūkis, MB",
    "K-0003": "Šilelio kepykla, UAB",
    "K-0004": "ŽALGIRIO 100% prekyba",
}


@pytest.fixture
def clients(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    with factory.begin() as session:
        for code, name in NAMES.items():
            client = Client(code=code)
            set_client_name(client, name)
            session.add(client)
    return factory


def add_tasks(factory: sessionmaker[Session], code: str) -> dict[TaskState, int]:
    """Give the client one task in every state, each in its own month."""
    ids: dict[TaskState, int] = {}
    with factory.begin() as session:
        client = session.scalars(select(Client).where(Client.code == code)).one()
        for month, state in enumerate(TaskState, start=1):
            run = Run(
                period=f"2026-{month:02d}",
                planned_start=date(2026, month, 1),
                planned_end=date(2026, month, 5),
            )
            session.add(run)
            session.flush()
            task = ClientTask(
                run_id=run.id, client_id=client.id, state=state, recipients=["old@x.lt"]
            )
            session.add(task)
            session.flush()
            ids[state] = task.id
    return ids


def tasks(
    factory: sessionmaker[Session], ids: dict[TaskState, int]
) -> dict[TaskState, ClientTask]:
    with factory() as session:
        return {
            state: session.get_one(ClientTask, task_id)
            for state, task_id in ids.items()
        }


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("K-0002", "K-0002"),
        ("k-0002", "K-0002"),
        ("šilelio ūkis", "K-0002"),
        ("ŠILELIO Ū", "K-0002"),
        ("pavyzdžių", "K-0001"),
        ("žalgirio 100%", "K-0004"),
    ],
    ids=[
        "code",
        "code-lower-case",
        "name-part",
        "name-capitals",
        "quotes",
        "percent-sign",
    ],
)
def test_find_client_by_code_or_name(
    clients: sessionmaker[Session], query: str, code: str
) -> None:
    with clients() as session:
        assert find_client(session, query).code == code


def test_find_client_lists_candidates(clients: sessionmaker[Session]) -> None:
    with clients() as session, pytest.raises(InvalidStateError) as raised:
        find_client(session, "šilelio")

    message = str(raised.value)
    assert "K-0002 Šilelio ūkis, MB" in message
    assert "K-0003 Šilelio kepykla, UAB" in message
    assert "Give the client code" in message


@pytest.mark.parametrize("query", ["K-9999", "nėra tokio", "_", "  "], ids=repr)
def test_find_client_not_found(clients: sessionmaker[Session], query: str) -> None:
    with clients() as session, pytest.raises(NotFoundError):
        find_client(session, query)


def test_set_client_emails_updates_unsent_tasks(clients: sessionmaker[Session]) -> None:
    ids = add_tasks(clients, "K-0002")

    client = set_client_emails(
        clients,
        "K-0002",
        "Ona@Silelis.lt; ona@silelis.lt; buhalterija@silelis.lt",
        actor=ACTOR,
    )

    new = ["Ona@Silelis.lt", "buhalterija@silelis.lt"]
    assert client.email_addresses == new
    with clients() as session:
        rows = session.execute(
            select(
                ClientEmail.address, ClientEmail.address_folded, ClientEmail.position
            ).order_by(ClientEmail.position)
        ).all()
        event = session.scalars(select(AuditEvent)).one()
    assert rows == [
        ("Ona@Silelis.lt", "ona@silelis.lt", 0),
        ("buhalterija@silelis.lt", "buhalterija@silelis.lt", 1),
    ]
    found = tasks(clients, ids)
    for state in (TaskState.READY, TaskState.STALE, TaskState.FAILED):
        assert found[state].recipients == new
        assert found[state].state == state
    assert found[TaskState.MISSING_EMAIL].state == TaskState.READY
    assert found[TaskState.MISSING_EMAIL].recipients == new
    for state in (
        TaskState.SENT,
        TaskState.SENDING,
        TaskState.UNKNOWN,
        TaskState.SKIPPED,
    ):
        assert found[state].recipients == ["old@x.lt"]
        assert found[state].state == state
    assert event.action == "client e-mail set"
    assert event.client_code == "K-0002"
    assert event.actor == ACTOR


def test_set_client_emails_empty_list_waits_for_address(
    clients: sessionmaker[Session],
) -> None:
    set_client_emails(clients, "K-0002", "a@silelis.lt", actor=ACTOR)
    ids = add_tasks(clients, "K-0002")

    client = set_client_emails(clients, "K-0002", "", actor=ACTOR)

    assert client.email_addresses == []
    found = tasks(clients, ids)
    assert found[TaskState.READY].state == TaskState.MISSING_EMAIL
    assert found[TaskState.READY].recipients == []


def test_set_client_emails_keeps_reordered_addresses(
    clients: sessionmaker[Session],
) -> None:
    set_client_emails(clients, "K-0001", "a@x.lt;b@x.lt", actor=ACTOR)

    client = set_client_emails(clients, "K-0001", "B@x.lt;a@x.lt", actor=ACTOR)

    assert client.email_addresses == ["B@x.lt", "a@x.lt"]


def test_set_client_emails_rejects_invalid_address(
    clients: sessionmaker[Session],
) -> None:
    set_client_emails(clients, "K-0001", "a@x.lt", actor=ACTOR)

    with pytest.raises(InvalidEmailError, match="'b@'"):
        set_client_emails(clients, "K-0001", "c@x.lt;b@", actor=ACTOR)

    with clients() as session:
        addresses = session.scalars(select(ClientEmail.address)).all()
    assert addresses == ["a@x.lt"]


def test_set_client_emails_unknown_client(clients: sessionmaker[Session]) -> None:
    with pytest.raises(NotFoundError, match="'K-7777'"):
        set_client_emails(clients, "K-7777", "a@x.lt", actor=ACTOR)


def test_exclude_and_include_client(clients: sessionmaker[Session]) -> None:
    excluded = exclude_client(clients, "k-0003", reason="bankrutavo", actor=ACTOR)

    assert excluded.code == "K-0003"
    assert excluded.excluded is True
    assert excluded.exclude_reason == "bankrutavo"

    included = include_client(clients, "K-0003", actor=ACTOR)

    assert included.excluded is False
    assert included.exclude_reason == ""
    with clients() as session:
        actions = session.scalars(
            select(AuditEvent.action).order_by(AuditEvent.id)
        ).all()
        stored = session.scalars(select(Client).where(Client.code == "K-0003")).one()
    assert actions == ["client excluded", "client included"]
    assert stored.excluded is False


def test_set_client_name_keeps_folded_copy() -> None:
    client = Client(code="K-1")

    set_client_name(client, "ĄŽUOLŲ Straße")

    assert client.name_folded == "ąžuolų strasse"
