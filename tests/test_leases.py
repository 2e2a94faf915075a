"""The database locks that let one process of a kind act at a time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from services.leases import AdvisoryLock, LeaseLock, advisory_key, make_lock
from services.models import Lease, utcnow


def test_lease_second_holder_waits(factory: sessionmaker[Session]) -> None:
    first = LeaseLock(factory, "clock", holder="first")
    second = LeaseLock(factory, "clock", holder="second")

    assert first.try_acquire()
    assert not second.try_acquire()
    with factory() as session:
        assert session.get(Lease, "clock").holder == "first"


def test_lease_holder_takes_it_again(factory: sessionmaker[Session]) -> None:
    lock = LeaseLock(factory, "clock", holder="first")

    assert lock.try_acquire()
    assert lock.try_acquire()
    assert lock.renew()


def test_lease_expired_is_taken_over(factory: sessionmaker[Session]) -> None:
    now = utcnow()
    first = LeaseLock(factory, "clock", holder="first", ttl=timedelta(seconds=60))
    second = LeaseLock(factory, "clock", holder="second")
    assert first.try_acquire(now=now)

    taken = second.try_acquire(now=now + timedelta(seconds=61))

    assert taken
    assert not first.renew(now=now + timedelta(seconds=62))
    with factory() as session:
        assert session.get(Lease, "clock").holder == "second"


def test_lease_renewal_extends_expiry(factory: sessionmaker[Session]) -> None:
    now = utcnow()
    first = LeaseLock(factory, "clock", holder="first", ttl=timedelta(seconds=60))
    second = LeaseLock(factory, "clock", holder="second")
    assert first.try_acquire(now=now)

    assert first.renew(now=now + timedelta(seconds=50))

    assert not second.try_acquire(now=now + timedelta(seconds=100))
    assert second.try_acquire(now=now + timedelta(seconds=111))


def test_lease_release_frees_it(factory: sessionmaker[Session]) -> None:
    first = LeaseLock(factory, "clock", holder="first")
    second = LeaseLock(factory, "clock", holder="second")
    assert first.try_acquire()

    first.release()

    assert second.try_acquire()
    with factory() as session:
        assert list(session.scalars(select(Lease.holder))) == ["second"]


def test_lease_names_are_independent(factory: sessionmaker[Session]) -> None:
    clock = LeaseLock(factory, "clock", holder="first")
    other = LeaseLock(factory, "other", holder="second")

    assert clock.try_acquire()
    assert other.try_acquire()


def test_advisory_lock_excludes_second(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("advisory locks are PostgreSQL's")
    first = AdvisoryLock(engine, "clock")
    second = AdvisoryLock(engine, "clock")

    assert first.try_acquire()
    assert not second.try_acquire()
    assert first.renew()
    first.release()
    assert second.try_acquire()
    second.release()


def test_advisory_lock_freed_when_connection_closes(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("advisory locks are PostgreSQL's")
    first = AdvisoryLock(engine, "clock")
    second = AdvisoryLock(engine, "clock")
    assert first.try_acquire()

    _terminate_advisory_holders(engine)

    assert not first.renew()
    assert second.try_acquire()
    second.release()


def _terminate_advisory_holders(engine: Engine) -> None:
    """End the server sessions holding advisory locks in this test database."""
    with engine.connect() as connection:
        connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_locks "
                "WHERE locktype = 'advisory' AND granted AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        )


def test_make_lock_picks_by_database(
    engine: Engine, factory: sessionmaker[Session]
) -> None:
    lock = make_lock(engine, factory, "clock")

    expected = AdvisoryLock if engine.dialect.name == "postgresql" else LeaseLock
    assert isinstance(lock, expected)


def test_advisory_key_is_stable_and_signed() -> None:
    key = advisory_key("invoices-scheduler")

    assert key == advisory_key("invoices-scheduler")
    assert key != advisory_key("invoices-worker")
    assert -(2**63) <= key < 2**63
