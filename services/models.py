"""The data model: clients, documents, monthly and client tasks, the audit trail."""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Dialect,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    deferred,
    mapped_column,
    relationship,
)
from sqlalchemy.types import TypeEngine


def utcnow() -> datetime:
    return datetime.now(UTC)


class Money(TypeDecorator[Decimal]):
    """A `Decimal` amount: NUMERIC(18, 2) on PostgreSQL, exact text on SQLite.

    SQLite has no decimal type and would round NUMERIC values through a float,
    so there the amount is stored as its canonical string.
    """

    impl = Numeric(18, 2)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(32))
        return dialect.type_descriptor(Numeric(18, 2, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise TypeError(f"money must be a Decimal, not {type(value).__name__}")
        if dialect.name == "sqlite":
            return str(value)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(str(value)) if not isinstance(value, Decimal) else value


class Rate(Money):
    """A VAT percentage such as 21 or 5.5, stored like `Money`."""

    impl = Numeric(7, 3)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(16))
        return dialect.type_descriptor(Numeric(7, 3, asdecimal=True))


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on both databases."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class DocumentType(enum.StrEnum):
    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"
    DEBIT_NOTE = "debit_note"


class DocumentStatus(enum.StrEnum):
    POSTED = "posted"
    DRAFT = "draft"
    CANCELLED = "cancelled"


class RunState(enum.StrEnum):
    PLANNED = "planned"
    GENERATED = "generated"
    COMPLETE = "complete"


class TaskState(enum.StrEnum):
    READY = "ready"
    MISSING_EMAIL = "missing_email"
    STALE = "stale"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"
    SKIPPED = "skipped"


# States in which a client task is finished for the month.
FINAL_STATES = frozenset({TaskState.SENT, TaskState.SKIPPED})
# States whose PDF and letter may be rebuilt because nothing was sent yet.
UNSENT_STATES = frozenset(
    {TaskState.READY, TaskState.MISSING_EMAIL, TaskState.STALE, TaskState.FAILED}
)


def _enum(kind: type[enum.StrEnum], name: str) -> Enum:
    return Enum(
        kind,
        name=name,
        native_enum=False,
        length=20,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


class Client(Base):
    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(500))
    # Lower-cased name for case-insensitive lookups that treat Lithuanian letters
    # alike on SQLite, whose LOWER() only folds ASCII.
    name_folded: Mapped[str] = mapped_column(String(500), index=True)
    language: Mapped[str] = mapped_column(String(8), default="lt")
    address: Mapped[str] = mapped_column(Text, default="")
    registration_code: Mapped[str] = mapped_column(String(64), default="")
    vat_code: Mapped[str] = mapped_column(String(64), default="")
    country: Mapped[str] = mapped_column(String(2), default="")
    excluded: Mapped[bool] = mapped_column(Boolean, default=False)
    exclude_reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow
    )

    emails: Mapped[list[ClientEmail]] = relationship(
        back_populates="client",
        cascade="all, delete-orphan",
        order_by="ClientEmail.position",
    )

    @property
    def email_addresses(self) -> list[str]:
        return [email.address for email in self.emails]


class ClientEmail(Base):
    __tablename__ = "client_emails"
    __table_args__ = (UniqueConstraint("client_id", "address_folded"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    address: Mapped[str] = mapped_column(String(320))
    address_folded: Mapped[str] = mapped_column(String(320))
    position: Mapped[int] = mapped_column(Integer, default=0)

    client: Mapped[Client] = relationship(back_populates="emails")


class Document(Base):
    """One sales document as issued; amounts are the printed ones, signed.

    Credit notes are stored with negative amounts whatever sign the source used.
    """

    __tablename__ = "documents"
    __table_args__ = (
        Index("ix_documents_status_date_client", "status", "date", "client_id"),
        Index("ix_documents_client_date", "client_id", "date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(100), unique=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    date: Mapped[date] = mapped_column(Date)
    type: Mapped[DocumentType] = mapped_column(_enum(DocumentType, "document_type"))
    # The source's own type code, such as SF or KS in i.SAF.
    source_type: Mapped[str] = mapped_column(String(16), default="")
    status: Mapped[DocumentStatus] = mapped_column(
        _enum(DocumentStatus, "document_status")
    )
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    net: Mapped[Decimal] = mapped_column(Money)
    vat: Mapped[Decimal] = mapped_column(Money)
    gross: Mapped[Decimal] = mapped_column(Money)
    # Digest of every field above and of the lines, to tell a changed document.
    fingerprint: Mapped[str] = mapped_column(String(64))
    source_file: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow
    )

    client: Mapped[Client] = relationship()
    lines: Mapped[list[DocumentLine]] = relationship(
        back_populates="document",
        cascade="all, delete-orphan",
        order_by="DocumentLine.position",
    )


class DocumentLine(Base):
    """The part of a document at one VAT rate."""

    __tablename__ = "document_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer, default=0)
    vat_rate: Mapped[Decimal] = mapped_column(Rate)
    tax_code: Mapped[str] = mapped_column(String(16), default="")
    net: Mapped[Decimal] = mapped_column(Money)
    vat: Mapped[Decimal] = mapped_column(Money)

    document: Mapped[Document] = relationship(back_populates="lines")


class Run(Base):
    """The monthly task: the period whose documents are sent, and its plan."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    period: Mapped[str] = mapped_column(String(7), unique=True)
    planned_start: Mapped[date] = mapped_column(Date)
    planned_end: Mapped[date] = mapped_column(Date)
    state: Mapped[RunState] = mapped_column(
        _enum(RunState, "run_state"), default=RunState.PLANNED
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    generated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    slack_channel: Mapped[str] = mapped_column(String(32), default="")
    slack_ts: Mapped[str] = mapped_column(String(32), default="")

    tasks: Mapped[list[ClientTask]] = relationship(back_populates="run")


class ClientTask(Base):
    """One client's statement e-mail for one period."""

    __tablename__ = "client_tasks"
    __table_args__ = (
        UniqueConstraint("run_id", "client_id"),
        Index("ix_client_tasks_run_state", "run_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    state: Mapped[TaskState] = mapped_column(_enum(TaskState, "task_state"))
    recipients: Mapped[list[str]] = mapped_column(JSON, default=list)
    subject: Mapped[str] = mapped_column(Text, default="")
    letter: Mapped[str] = mapped_column(Text, default="")
    pdf: Mapped[bytes] = deferred(mapped_column(LargeBinary, default=b""))
    pdf_filename: Mapped[str] = mapped_column(String(200), default="")
    document_count: Mapped[int] = mapped_column(Integer, default=0)
    # Gross total per currency, as decimal strings: {"EUR": "1234.56"}.
    totals: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # Digest of the documents the PDF was made from; a mismatch means stale.
    documents_fingerprint: Mapped[str] = mapped_column(String(64), default="")
    stale_reason: Mapped[str] = mapped_column(Text, default="")
    failure_reason: Mapped[str] = mapped_column(Text, default="")
    skip_reason: Mapped[str] = mapped_column(Text, default="")
    message_id: Mapped[str] = mapped_column(String(200), default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claim_token: Mapped[str] = mapped_column(String(64), default="")
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    generated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The latest SendGrid event (delivered, bounce, dropped, ...) for this task.
    delivery_status: Mapped[str] = mapped_column(String(32), default="")
    delivery_detail: Mapped[str] = mapped_column(Text, default="")
    slack_ts: Mapped[str] = mapped_column(String(32), default="")
    slack_file_id: Mapped[str] = mapped_column(String(32), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow
    )

    run: Mapped[Run] = relationship(back_populates="tasks")
    client: Mapped[Client] = relationship()


class AuditEvent(Base):
    """Who did what and when: every action that changes something."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(50))
    period: Mapped[str] = mapped_column(String(7), default="", index=True)
    client_code: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[str] = mapped_column(Text, default="")


class Job(Base):
    """Long work recorded before it starts, so that a restart can resume it."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_state_id", "state", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(50))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # A key that makes a repeated request (a double click, a Slack retry) find
    # the job already recorded instead of adding another.
    dedup_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    state: Mapped[str] = mapped_column(String(20), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    locked_by: Mapped[str] = mapped_column(String(100), default="")
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DeliveryEvent(Base):
    """One SendGrid Event Webhook event, recorded once by its `sg_event_id`."""

    __tablename__ = "delivery_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    sg_event_id: Mapped[str] = mapped_column(String(200), unique=True)
    client_task_id: Mapped[int | None] = mapped_column(
        ForeignKey("client_tasks.id"), index=True
    )
    event: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text, default="")
    email: Mapped[str] = mapped_column(String(320), default="")
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Lease(Base):
    """A named lock with an expiry, so that one process acts at a time."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ScheduledPost(Base):
    """A scheduler action done once, such as a month's post or a reminder."""

    __tablename__ = "scheduled_posts"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    done_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    detail: Mapped[str] = mapped_column(Text, default="")
