from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine

from services.db import check_schema
from services.models import Base


def test_migrations_match_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)

    unexpected = [
        change
        for change in differences
        if not (change[0] == "remove_table" and change[1].name == "apscheduler_jobs")
        and not (
            change[0] == "remove_index" and change[1].table.name == "apscheduler_jobs"
        )
    ]
    assert unexpected == []


def test_check_schema_accepts_migrated_database(engine: Engine) -> None:
    check_schema(engine)
