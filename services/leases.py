"""Database locks that let one process of a kind act at a time.

PostgreSQL uses a session-level advisory lock held by a dedicated connection:
the server releases it when that connection closes, so a crashed holder frees
it at once. Other databases use a row in `leases` with a holder and an expiry,
taken with a conditional UPDATE or INSERT and renewed while the holder lives.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import uuid
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy import (
    Connection,
    CursorResult,
    Engine,
    Executable,
    delete,
    insert,
    text,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from services.models import Lease, utcnow

logger = logging.getLogger(__name__)

# How long a lease row stays valid without renewal. Holders renew it well before.
DEFAULT_LEASE_TTL = timedelta(seconds=90)


class DatabaseLock(Protocol):
    """A lock that a process tries to take, keeps alive and releases."""

    @property
    def name(self) -> str: ...

    def try_acquire(self) -> bool:
        """Take the lock if it is free; return whether this process holds it."""

    def renew(self) -> bool:
        """Keep the lock alive; return false when it was lost."""

    def release(self) -> None:
        """Give the lock up, if held."""


def new_holder_id() -> str:
    """Name this process uniquely: host, process id and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def advisory_key(name: str) -> int:
    """Map a lock name to the signed 64-bit key `pg_try_advisory_lock` takes."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class AdvisoryLock:
    """A PostgreSQL session advisory lock on a connection kept for its life."""

    def __init__(self, engine: Engine, name: str) -> None:
        self._engine = engine
        self._name = name
        self._key = advisory_key(name)
        self._connection: Connection | None = None

    @property
    def name(self) -> str:
        return self._name

    def try_acquire(self) -> bool:
        if self._connection is not None:
            return self.renew()

        connection = self._engine.connect().execution_options(
            isolation_level="AUTOCOMMIT"
        )
        try:
            taken = connection.scalar(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}
            )
        except DBAPIError:
            connection.close()
            raise
        if not taken:
            connection.close()
            return False

        self._connection = connection
        return True

    def renew(self) -> bool:
        """Check that the holding connection is still open, so the lock is held."""
        if self._connection is None:
            return False
        try:
            self._connection.scalar(text("SELECT 1"))
        except SQLAlchemyError:
            logger.exception("Lost the connection holding the lock %s", self._name)
            self._discard()
            return False
        return True

    def release(self) -> None:
        if self._connection is None:
            return
        try:
            self._connection.scalar(
                text("SELECT pg_advisory_unlock(:key)"), {"key": self._key}
            )
        except SQLAlchemyError:
            logger.exception("Could not unlock %s; closing its connection", self._name)
        self._discard()

    def _discard(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.close()
        except SQLAlchemyError:
            connection.invalidate()


class LeaseLock:
    """A row in `leases` owned by `holder` until `expires_at`, renewed by it.

    Taking it is one conditional UPDATE (free or expired rows only) and, when no
    row exists, an INSERT whose primary key lets only one of two racers win.
    """

    def __init__(
        self,
        factory: sessionmaker[Session],
        name: str,
        *,
        holder: str,
        ttl: timedelta = DEFAULT_LEASE_TTL,
    ) -> None:
        self._factory = factory
        self._name = name
        self.holder = holder
        self.ttl = ttl
        self._held = False

    @property
    def name(self) -> str:
        return self._name

    def try_acquire(self, *, now: datetime | None = None) -> bool:
        now = now or utcnow()
        expires_at = now + self.ttl
        with self._factory() as session, session.begin():
            taken = _rowcount(
                session,
                update(Lease)
                .where(
                    Lease.name == self._name,
                    (Lease.holder == self.holder) | (Lease.expires_at <= now),
                )
                .values(holder=self.holder, expires_at=expires_at)
                .execution_options(synchronize_session=False),
            )
        if not taken:
            taken = self._insert(expires_at)
        self._held = bool(taken)
        return self._held

    def _insert(self, expires_at: datetime) -> int:
        try:
            with self._factory() as session, session.begin():
                session.execute(
                    insert(Lease).values(
                        name=self._name, holder=self.holder, expires_at=expires_at
                    )
                )
        except IntegrityError:
            return 0
        return 1

    def renew(self, *, now: datetime | None = None) -> bool:
        if not self._held:
            return False
        now = now or utcnow()
        with self._factory() as session, session.begin():
            renewed = _rowcount(
                session,
                update(Lease)
                .where(
                    Lease.name == self._name,
                    Lease.holder == self.holder,
                    Lease.expires_at > now,
                )
                .values(expires_at=now + self.ttl)
                .execution_options(synchronize_session=False),
            )
        if not renewed:
            logger.warning("The lease %s expired before renewal", self._name)
        self._held = bool(renewed)
        return self._held

    def release(self) -> None:
        if not self._held:
            return
        with self._factory() as session, session.begin():
            session.execute(
                delete(Lease).where(
                    Lease.name == self._name, Lease.holder == self.holder
                )
            )
        self._held = False


def _rowcount(session: Session, statement: Executable) -> int:
    return cast(CursorResult[Any], session.execute(statement)).rowcount


def make_lock(
    engine: Engine,
    factory: sessionmaker[Session],
    name: str,
    *,
    holder: str | None = None,
    ttl: timedelta = DEFAULT_LEASE_TTL,
) -> DatabaseLock:
    """Build the lock that suits the database: advisory on PostgreSQL, else a lease."""
    if engine.dialect.name == "postgresql":
        return AdvisoryLock(engine, name)
    return LeaseLock(factory, name, holder=holder or new_holder_id(), ttl=ttl)
