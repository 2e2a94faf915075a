"""Excluding a client skips its unsent tasks; including it again rebuilds them."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from services import runs
from services.clients import exclude_client, include_client
from services.imports import import_clients_csv
from services.models import ClientTask, Run, RunState, TaskState
from services.periods import Period
from tests.factories import COMPANY, add_client, add_document

NOVEMBER = Period(2026, 11)


def _generated_month(factory: sessionmaker[Session]) -> None:
    with factory() as session, session.begin():
        client = add_client(session, "X", "Išskirsimas", emails=("x@x.lt",))
        add_document(session, client, "X-1", date(2026, 11, 5), "100.00", "21.00")
    runs.create_run(
        factory,
        NOVEMBER,
        planned_start=date(2026, 12, 1),
        planned_end=date(2026, 12, 5),
        actor="test",
    )
    runs.generate_run(factory, NOVEMBER, company=COMPANY, actor="test")


def _task_and_run(factory: sessionmaker[Session]) -> tuple[ClientTask, Run]:
    with factory() as session:
        task = session.scalars(select(ClientTask)).one()
        run = session.scalars(select(Run).where(Run.period == str(NOVEMBER))).one()
        return task, run


def test_exclude_skips_unsent_task(factory: sessionmaker[Session]) -> None:
    _generated_month(factory)

    exclude_client(factory, "X", reason="bankrutavo", actor="test")

    task, run = _task_and_run(factory)
    assert task.state is TaskState.SKIPPED
    assert task.skip_reason == "client excluded: bankrutavo"
    assert run.state is RunState.COMPLETE


def test_include_again_rebuilds_task(factory: sessionmaker[Session]) -> None:
    _generated_month(factory)
    exclude_client(factory, "X", reason="bankrutavo", actor="test")

    include_client(factory, "X", actor="test")
    stale, reopened = _task_and_run(factory)
    runs.generate_run(factory, NOVEMBER, company=COMPANY, actor="test")

    assert stale.state is TaskState.STALE
    assert reopened.state is RunState.GENERATED
    task, _run = _task_and_run(factory)
    assert task.state is TaskState.READY


def test_exclude_leaves_sent_task(factory: sessionmaker[Session]) -> None:
    _generated_month(factory)
    with factory() as session, session.begin():
        session.scalars(select(ClientTask)).one().state = TaskState.SENT

    exclude_client(factory, "X", reason="bankrutavo", actor="test")

    task, _run = _task_and_run(factory)
    assert task.state is TaskState.SENT


def test_clients_file_exclusion_skips_task(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    _generated_month(factory)
    path = tmp_path / "clients.csv"
    path.write_text(
        "code,name,email,language,address,exclude\n"
        "X,Išskirsimas,x@x.lt,lt,Gatvė 1,susijusi įmonė\n",
        encoding="utf-8",
    )

    import_clients_csv(factory, path, actor="test")

    task, _run = _task_and_run(factory)
    assert task.state is TaskState.SKIPPED
    assert task.skip_reason == "client excluded: susijusi įmonė"
