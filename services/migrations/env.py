"""Alembic environment: runs against the engine the product passes in."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from services.db import make_engine
from services.models import Base

config = context.config
engine = config.attributes.get("engine")
if not isinstance(engine, Engine):
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("pass an engine in config.attributes['engine']")
    engine = make_engine(url)

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
