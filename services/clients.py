"""Clients: lookup by code or name, statement addresses, exclusion."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from services import audit
from services.addresses import fold_address, parse_addresses
from services.db import transaction
from services.errors import InvalidStateError, NotFoundError
from services.models import UNSENT_STATES, Client, ClientEmail, ClientTask, TaskState
from services.run_state import refresh_run_state

logger = logging.getLogger(__name__)

# How many matching clients an ambiguous lookup lists.
MAX_CANDIDATES = 10


def fold_name(name: str) -> str:
    """Return the case-folded form of a client name that lookups compare."""
    return name.casefold()


def set_client_name(client: Client, name: str) -> None:
    """Set the name and its folded copy together, so lookups stay in step."""
    client.name = name
    client.name_folded = fold_name(name)


def find_client(session: Session, query: str) -> Client:
    """Find one client by its code, or else by part of its name, ignoring case.

    Raise `NotFoundError` when nothing matches and `InvalidStateError`, listing
    the candidates, when several names match.
    """
    text = query.strip()
    if not text:
        raise NotFoundError("no client was given: give a client code or part of a name")

    for condition in (Client.code == text, func.lower(Client.code) == text.lower()):
        client = session.scalars(select(Client).where(condition).limit(2)).all()
        if len(client) == 1:
            return client[0]

    folded = fold_name(text)
    candidates = session.scalars(
        select(Client)
        .where(Client.name_folded.contains(folded, autoescape=True))
        .order_by(Client.code)
        .limit(MAX_CANDIDATES + 1)
    ).all()
    if len(candidates) == 1:
        return candidates[0]
    exact = [client for client in candidates if client.name_folded == folded]
    if len(exact) == 1:
        return exact[0]
    if not candidates:
        raise NotFoundError(
            f"no client has the code {text!r} or a name containing it; "
            "check the spelling or import the clients file first"
        )
    raise InvalidStateError(_ambiguous_message(text, candidates))


def _ambiguous_message(query: str, candidates: Sequence[Client]) -> str:
    shown = candidates[:MAX_CANDIDATES]
    listed = "; ".join(f"{client.code} {client.name}" for client in shown)
    more = " and more" if len(candidates) > MAX_CANDIDATES else ""
    return (
        f"{query!r} matches several clients: {listed}{more}. "
        "Give the client code instead"
    )


def replace_client_emails(
    session: Session, client: Client, addresses: list[str]
) -> int:
    """Give `client` exactly `addresses` and pass them to its unsent tasks.

    A task waiting for an address becomes ready when the list is not empty, and
    a ready task waits again when it is emptied. Return how many tasks changed.
    """
    rows: list[ClientEmail] = []
    existing = {email.address_folded: email for email in client.emails}
    for position, address in enumerate(addresses):
        folded = fold_address(address)
        row = existing.pop(folded, None) or ClientEmail(address_folded=folded)
        row.address = address
        row.position = position
        rows.append(row)
    client.emails = rows

    if client.id is None:
        return 0
    tasks = session.scalars(
        select(ClientTask).where(
            ClientTask.client_id == client.id, ClientTask.state.in_(UNSENT_STATES)
        )
    ).all()
    for task in tasks:
        task.recipients = list(addresses)
        if addresses and task.state == TaskState.MISSING_EMAIL:
            task.state = TaskState.READY
        elif not addresses and task.state == TaskState.READY:
            task.state = TaskState.MISSING_EMAIL
    return len(tasks)


def set_client_emails(
    factory: sessionmaker[Session], code: str, text: str, *, actor: str
) -> Client:
    """Replace a client's statement addresses with those in `text`.

    `text` holds addresses separated by `;`; an empty text removes them all.
    Raise `InvalidEmailError` before changing anything when one is invalid.
    """
    addresses = parse_addresses(text)
    with transaction(factory) as session:
        client = _load_client(session, code)
        tasks = replace_client_emails(session, client, addresses)
        shown = "; ".join(addresses) or "none"
        audit.record(
            session,
            actor=actor,
            action="client e-mail set",
            client_code=client.code,
            detail=f"addresses: {shown}; unsent tasks updated: {tasks}",
        )
    logger.info(
        "client %s has %d address(es) now; %d unsent task(s) updated",
        client.code,
        len(addresses),
        tasks,
    )
    return client


def exclude_client(
    factory: sessionmaker[Session], code: str, *, reason: str, actor: str
) -> Client:
    """Exclude a client from statements; the reason shows in status."""
    shown_reason = reason.strip() or f"excluded by {actor}"
    with transaction(factory) as session:
        client = _load_client(session, code)
        client.excluded = True
        client.exclude_reason = shown_reason
        apply_exclusion(session, client)
        audit.record(
            session,
            actor=actor,
            action="client excluded",
            client_code=client.code,
            detail=shown_reason,
        )
    logger.info("client %s excluded", client.code)
    return client


def include_client(factory: sessionmaker[Session], code: str, *, actor: str) -> Client:
    """Include an excluded client in statements again."""
    with transaction(factory) as session:
        client = _load_client(session, code)
        previous = client.exclude_reason
        client.excluded = False
        client.exclude_reason = ""
        apply_exclusion(session, client)
        audit.record(
            session,
            actor=actor,
            action="client included",
            client_code=client.code,
            detail=f"previous exclusion reason: {previous}" if previous else "",
        )
    logger.info("client %s included", client.code)
    return client


EXCLUDED_PREFIX = "client excluded: "


def apply_exclusion(session: Session, client: Client) -> None:
    """Carry the client's exclusion over to its client tasks that are not sent.

    An excluded client's unsent tasks become skipped, so its months can be
    complete. Including it again turns the tasks skipped for that reason into
    stale ones, which the next Generate rebuilds with the current documents.
    """
    tasks = session.scalars(select(ClientTask).where(ClientTask.client_id == client.id))
    for task in tasks:
        if client.excluded and task.state in UNSENT_STATES:
            task.state = TaskState.SKIPPED
            task.skip_reason = EXCLUDED_PREFIX + client.exclude_reason
        elif (
            not client.excluded
            and task.state is TaskState.SKIPPED
            and task.skip_reason.startswith(EXCLUDED_PREFIX)
        ):
            task.state = TaskState.STALE
            task.skip_reason = ""
            task.stale_reason = (
                "the client was included again; generate the month to rebuild "
                "its statement"
            )
        else:
            continue
        refresh_run_state(session, task.run)


def _load_client(session: Session, code: str) -> Client:
    """Load a client by its exact code, case-insensitive, with its addresses."""
    text = code.strip()
    client = session.scalars(
        select(Client)
        .options(selectinload(Client.emails))
        .where(func.lower(Client.code) == text.lower())
        .order_by(Client.code != text)
        .limit(1)
    ).first()
    if client is None:
        raise NotFoundError(
            f"no client has the code {text!r}; check the code in the clients file "
            "or import it first"
        )
    return client
