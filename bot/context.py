"""The objects every entry point builds once and passes down."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.settings import Settings
from services.db import check_schema, make_engine, make_session_factory
from services.statements import Company


@dataclass(frozen=True)
class AppContext:
    settings: Settings
    engine: Engine
    factory: sessionmaker[Session]

    @property
    def company(self) -> Company:
        """The sender printed on every statement; all four COMPANY_* are required."""
        self.settings.require(
            "company_name", "company_code", "company_vat_code", "company_address"
        )
        return Company(
            name=self.settings.company_name,
            code=self.settings.company_code,
            vat_code=self.settings.company_vat_code,
            address=self.settings.company_address,
        )


def build_context(settings: Settings, *, check: bool = True) -> AppContext:
    """Connect to the database and, unless `check` is false, verify its schema."""
    engine = make_engine(settings.database_url)
    if check:
        check_schema(engine)
    return AppContext(
        settings=settings, engine=engine, factory=make_session_factory(engine)
    )
