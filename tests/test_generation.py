from __future__ import annotations

from datetime import date
from io import BytesIO

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from services import runs
from services.models import ClientTask, TaskState
from services.periods import Period
from tests.factories import COMPANY, add_client, add_document

NOVEMBER = Period(2026, 11)


def _add_month(factory: sessionmaker[Session], clients: int) -> None:
    with factory() as session, session.begin():
        for index in range(clients):
            emails = (f"k{index}@imone.lt",) if index % 4 else ()
            client = add_client(
                session, f"K{index:03d}", f"Ūkis Nr. {index}", emails=emails
            )
            for number in range(index % 3 + 1):
                add_document(
                    session,
                    client,
                    f"S-{index}-{number}",
                    date(2026, 11, number + 1),
                    "100.00",
                    "21.00",
                )
    runs.create_run(
        factory,
        NOVEMBER,
        planned_start=date(2026, 12, 3),
        planned_end=date(2026, 12, 31),
        actor="test",
    )


@pytest.mark.parametrize("workers", [0, 2], ids=["inline", "worker-processes"])
def test_generate_stores_every_task(
    factory: sessionmaker[Session], workers: int
) -> None:
    _add_month(factory, 30)
    calls: list[int] = []

    report = runs.generate_run(
        factory,
        NOVEMBER,
        company=COMPANY,
        actor="test",
        workers=workers,
        progress=lambda done, total, label: calls.append(done),
    )

    assert [task.client_code for task in report.created] == [
        f"K{index:03d}" for index in range(30)
    ]
    assert calls == list(range(31))
    with factory() as session:
        tasks = {task.id: task for task in session.scalars(select(ClientTask))}
        for view in report.created:
            task = tasks[view.id]
            assert task.document_count == view.documents
            assert task.state is view.state
            assert _page_count(task.pdf) == 1
    missing = [view for view in report.created if view.state is TaskState.MISSING_EMAIL]
    assert len(missing) == 8


def test_generate_again_after_workers_adds_nothing(
    factory: sessionmaker[Session],
) -> None:
    _add_month(factory, 5)
    runs.generate_run(factory, NOVEMBER, company=COMPANY, actor="test", workers=1)

    again = runs.generate_run(factory, NOVEMBER, company=COMPANY, actor="test")

    assert again.created == []
    assert again.existing == 5
    with factory() as session:
        assert session.scalar(select(func.count(ClientTask.id))) == 5


def _page_count(pdf: bytes) -> int:
    return len(PdfReader(BytesIO(pdf)).pages)
