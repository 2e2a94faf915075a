"""Engines, sessions and the schema check."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from services.errors import ConfigurationError, SchemaOutdatedError


def normalize_url(url: str) -> str:
    """Map `postgres://` and `postgresql://` to the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets foreign keys, WAL and a busy timeout."""
    url = normalize_url(url)
    try:
        parsed = make_url(url)
    except Exception as error:
        raise ConfigurationError(
            f"DATABASE_URL {url!r} is not a valid SQLAlchemy URL"
        ) from error

    if parsed.get_backend_name() != "sqlite":
        try:
            return create_engine(url, pool_pre_ping=True)
        except (ModuleNotFoundError, NoSuchModuleError) as error:
            raise ConfigurationError(
                f"DATABASE_URL names the database driver {parsed.drivername!r}, "
                "which is not installed; use sqlite:///FILE or "
                "postgresql://USER@HOST/DATABASE"
            ) from error

    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        if parsed.database and parsed.database != ":memory:":
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Open a session that commits on success and rolls back on any error."""
    with factory() as session, session.begin():
        yield session


def alembic_config(engine: Engine | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", "services:migrations")
    if engine is not None:
        config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or migrate the schema to `revision`."""
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    """Return the schema revision the database is at, or None when it has none."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def check_schema(engine: Engine) -> None:
    """Raise `SchemaOutdatedError` unless the database is at the newest revision."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    database = engine.url.database
    on_disk = engine.dialect.name == "sqlite" and database not in (None, "", ":memory:")
    if on_disk and not Path(str(database)).exists():
        raise SchemaOutdatedError(
            f"there is no database file at {database}; create it with "
            "`invoices db upgrade` or set DATABASE_URL"
        )
    current = current_revision(engine)
    if current == head:
        return
    if current is None:
        raise SchemaOutdatedError(
            f"the database at {engine.url.render_as_string(hide_password=True)} "
            "has no schema yet; run `invoices db upgrade` first"
        )
    raise SchemaOutdatedError(
        f"the database schema is at revision {current} but this version needs "
        f"{head}; run `invoices db upgrade`"
    )
