from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from services import runs
from services.errors import InvalidStateError, NotFoundError
from services.models import (
    ClientTask,
    DocumentStatus,
    DocumentType,
    Run,
    RunState,
    TaskState,
)
from services.periods import Period
from tests.factories import COMPANY, add_client, add_document

NOVEMBER = Period(2026, 11)


def _create_november(factory: sessionmaker[Session]) -> None:
    runs.create_run(
        factory,
        NOVEMBER,
        planned_start=date(2026, 12, 3),
        planned_end=date(2026, 12, 31),
        actor="test",
    )


def _generate(factory: sessionmaker[Session]) -> runs.GenerateReport:
    return runs.generate_run(factory, NOVEMBER, company=COMPANY, actor="test")


def _tasks(factory: sessionmaker[Session]) -> dict[str, ClientTask]:
    with factory() as session:
        rows = session.execute(
            select(ClientTask).join(Run).where(Run.period == str(NOVEMBER))
        ).scalars()
        return {task.client.code: task for task in rows}


def test_create_run_rejects_duplicate(factory: sessionmaker[Session]) -> None:
    _create_november(factory)

    with pytest.raises(InvalidStateError, match="already exists"):
        _create_november(factory)


def test_create_run_rejects_end_before_start(factory: sessionmaker[Session]) -> None:
    with pytest.raises(InvalidStateError, match="before the planned start"):
        runs.create_run(
            factory,
            NOVEMBER,
            planned_start=date(2026, 12, 10),
            planned_end=date(2026, 12, 3),
            actor="test",
        )


def test_generate_needs_monthly_task(factory: sessionmaker[Session]) -> None:
    with pytest.raises(NotFoundError, match="invoices run create 2026-11"):
        _generate(factory)


def test_generate_creates_tasks_for_active_clients(
    factory: sessionmaker[Session],
) -> None:
    with factory() as session, session.begin():
        active = add_client(session, "A", "Aktyvus", emails=("a@a.lt",))
        add_document(session, active, "S-1", date(2026, 11, 5), "100.00", "21.00")
        quiet = add_client(session, "Q", "Tylus", emails=("q@q.lt",))
        add_document(session, quiet, "S-2", date(2026, 10, 5), "100.00", "21.00")
        no_email = add_client(session, "N", "Be adreso")
        add_document(session, no_email, "S-3", date(2026, 11, 6), "10.00", "2.10")
        excluded = add_client(
            session, "X", "Išskirtas", emails=("x@x.lt",), excluded=True, reason="VIP"
        )
        add_document(session, excluded, "S-4", date(2026, 11, 7), "5.00", "1.05")
    _create_november(factory)

    report = _generate(factory)

    tasks = _tasks(factory)
    assert sorted(tasks) == ["A", "N"]
    assert tasks["A"].state is TaskState.READY
    assert tasks["A"].recipients == ["a@a.lt"]
    assert tasks["N"].state is TaskState.MISSING_EMAIL
    assert report.excluded == [("X", "Išskirtas", "VIP")]
    status = runs.run_status(factory, NOVEMBER)
    assert [client.client_code for client in status.excluded] == ["X"]
    assert status.excluded[0].reason == "VIP"


def test_generate_again_adds_only_new_clients(factory: sessionmaker[Session]) -> None:
    with factory() as session, session.begin():
        first = add_client(session, "A", "Pirmas", emails=("a@a.lt",))
        add_document(session, first, "S-1", date(2026, 11, 5), "100.00", "21.00")
    _create_november(factory)
    first_report = _generate(factory)
    created_at = _tasks(factory)["A"].generated_at

    second_report = _generate(factory)
    with factory() as session, session.begin():
        second = add_client(session, "B", "Antras", emails=("b@b.lt",))
        add_document(session, second, "S-2", date(2026, 11, 9), "50.00", "10.50")
    third_report = _generate(factory)

    assert [task.client_code for task in first_report.created] == ["A"]
    assert second_report.created == []
    assert second_report.existing == 1
    assert [task.client_code for task in third_report.created] == ["B"]
    assert _tasks(factory)["A"].generated_at == created_at


def test_generate_creates_next_month(factory: sessionmaker[Session]) -> None:
    _create_november(factory)

    report = _generate(factory)
    _generate(factory)

    with factory() as session:
        december = session.scalars(select(Run).where(Run.period == "2026-12")).one()
    assert report.next_created
    assert december.planned_start == date(2027, 1, 3)
    assert december.planned_end == date(2027, 1, 31)
    assert december.state is RunState.PLANNED


@pytest.fixture(params=["UTC", "Pacific/Kiritimati", "America/Los_Angeles"])
def server_zone(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test as if the server's own time zone were each of these."""
    previous = os.environ.get("TZ")
    os.environ["TZ"] = request.param
    time.tzset()
    yield request.param
    if previous is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = previous
    time.tzset()


def test_period_edges_whatever_server_zone(
    factory: sessionmaker[Session], server_zone: str
) -> None:
    with factory() as session, session.begin():
        client = add_client(session, "E", "Kraštai", emails=("e@e.lt",))
        add_document(session, client, "BEFORE", date(2026, 10, 31), "1.00", "0.21")
        add_document(session, client, "FIRST", date(2026, 11, 1), "2.00", "0.42")
        add_document(session, client, "LAST", date(2026, 11, 30), "3.00", "0.63")
        add_document(session, client, "AFTER", date(2026, 12, 1), "4.00", "0.84")
    _create_november(factory)

    _generate(factory)

    task = _tasks(factory)["E"]
    assert task.document_count == 2
    assert task.totals == {"EUR": "6.05"}


@pytest.mark.parametrize(
    "status",
    [DocumentStatus.DRAFT, DocumentStatus.CANCELLED],
    ids=["draft", "cancelled"],
)
def test_unposted_documents_never_count(
    factory: sessionmaker[Session], status: DocumentStatus
) -> None:
    with factory() as session, session.begin():
        client = add_client(session, "D", "Juodraštis", emails=("d@d.lt",))
        add_document(session, client, "POSTED", date(2026, 11, 2), "10.00", "2.10")
        add_document(
            session,
            client,
            "HIDDEN",
            date(2026, 11, 3),
            "99.00",
            "20.79",
            status=status,
        )
        only_hidden = add_client(session, "H", "Tik juodraštis", emails=("h@h.lt",))
        add_document(
            session,
            only_hidden,
            "HIDDEN-2",
            date(2026, 11, 4),
            "1.00",
            "0.21",
            status=status,
        )
    _create_november(factory)

    _generate(factory)

    tasks = _tasks(factory)
    assert sorted(tasks) == ["D"]
    assert tasks["D"].document_count == 1
    assert tasks["D"].totals == {"EUR": "12.10"}


def test_credit_note_only_client_has_negative_total(
    factory: sessionmaker[Session],
) -> None:
    with factory() as session, session.begin():
        client = add_client(session, "C", "Grąžintojas", emails=("c@c.lt",))
        add_document(
            session,
            client,
            "KS-1",
            date(2026, 11, 20),
            "-200.00",
            "-42.00",
            kind=DocumentType.CREDIT_NOTE,
        )
    _create_november(factory)

    _generate(factory)

    assert _tasks(factory)["C"].totals == {"EUR": "-242.00"}


def test_two_currencies_give_two_totals(factory: sessionmaker[Session]) -> None:
    with factory() as session, session.begin():
        client = add_client(session, "M", "Dvi valiutos", emails=("m@m.lt",))
        add_document(session, client, "E-1", date(2026, 11, 2), "0.10", "0.02")
        add_document(session, client, "E-2", date(2026, 11, 3), "0.20", "0.04")
        add_document(
            session,
            client,
            "U-1",
            date(2026, 11, 4),
            "1000.00",
            "0.00",
            rate="0",
            currency="USD",
        )
    _create_november(factory)

    _generate(factory)

    # 0.12 + 0.24 is exactly 0.36: a float sum would give 0.36000000000000004.
    assert _tasks(factory)["M"].totals == {"EUR": "0.36", "USD": "1000.00"}


def test_stale_task_is_rebuilt_by_generate(factory: sessionmaker[Session]) -> None:
    with factory() as session, session.begin():
        client = add_client(session, "S", "Pasikeitęs", emails=("s@s.lt",))
        add_document(session, client, "S-1", date(2026, 11, 5), "100.00", "21.00")
    _create_november(factory)
    _generate(factory)
    with factory() as session, session.begin():
        task = session.scalars(select(ClientTask)).one()
        task.state = TaskState.STALE
        task.stale_reason = "invoice S-1 changed"
        add_document(session, task.client, "S-2", date(2026, 11, 6), "1.00", "0.21")

    report = _generate(factory)

    task = _tasks(factory)["S"]
    assert [view.client_code for view in report.regenerated] == ["S"]
    assert task.state is TaskState.READY
    assert task.stale_reason == ""
    assert task.document_count == 2
    assert task.totals == {"EUR": "122.21"}


def test_stale_task_without_documents_is_skipped(
    factory: sessionmaker[Session],
) -> None:
    with factory() as session, session.begin():
        client = add_client(session, "V", "Dingęs", emails=("v@v.lt",))
        document = add_document(
            session, client, "V-1", date(2026, 11, 5), "100.00", "21.00"
        )
    _create_november(factory)
    _generate(factory)
    with factory() as session, session.begin():
        session.get_one(type(document), document.id).status = DocumentStatus.CANCELLED
        session.scalars(select(ClientTask)).one().state = TaskState.STALE

    _generate(factory)

    task = _tasks(factory)["V"]
    assert task.state is TaskState.SKIPPED
    assert "no posted documents" in task.skip_reason


def test_skip_completes_the_month(factory: sessionmaker[Session]) -> None:
    with factory() as session, session.begin():
        client = add_client(session, "K", "Praleistas", emails=("k@k.lt",))
        add_document(session, client, "K-1", date(2026, 11, 5), "100.00", "21.00")
    _create_november(factory)
    _generate(factory)

    view = runs.skip_task(factory, NOVEMBER, "K", actor="test", reason="paid in cash")

    assert view.state is TaskState.SKIPPED
    status = runs.run_status(factory, NOVEMBER)
    assert status.run.state is RunState.COMPLETE
    assert status.actions[0]["action"] == "task.skip"
    assert status.actions[0]["actor"] == "test"


def test_status_json_shape(factory: sessionmaker[Session]) -> None:
    with factory() as session, session.begin():
        client = add_client(session, "J", "Jonas", emails=("j@j.lt", "k@j.lt"))
        add_document(session, client, "J-1", date(2026, 11, 5), "1234.50", "259.25")
    _create_november(factory)
    _generate(factory)

    result = runs.run_status(factory, NOVEMBER).to_json()

    assert result["run"]["period"] == "2026-11"
    assert result["run"]["planned_start"] == "2026-12-03"
    assert result["run"]["state"] == "generated"
    [task] = result["tasks"]
    assert task["client_code"] == "J"
    assert task["recipients"] == ["j@j.lt", "k@j.lt"]
    assert task["documents"] == 1
    assert task["totals"] == {"EUR": "1493.75"}
    assert task["state"] == "ready"
    assert task["message_id"] is None
    assert Decimal(task["totals"]["EUR"]) == Decimal("1493.75")


def test_status_flags_documents_changed_after_sending(
    factory: sessionmaker[Session],
) -> None:
    with factory() as session, session.begin():
        changed = add_client(session, "C", "Pakeistas", emails=("c@c.lt",))
        add_document(session, changed, "C-1", date(2026, 11, 5), "100.00", "21.00")
        steady = add_client(session, "S", "Nepakitęs", emails=("s@s.lt",))
        add_document(session, steady, "S-1", date(2026, 11, 5), "100.00", "21.00")
    _create_november(factory)
    _generate(factory)
    with factory() as session, session.begin():
        for task in session.scalars(select(ClientTask)):
            task.state = TaskState.SENT
        add_document(session, changed, "C-2", date(2026, 11, 9), "1.00", "0.21")

    status = runs.run_status(factory, NOVEMBER)

    flags = {task.client_code: task.documents_changed for task in status.tasks}
    assert flags == {"C": True, "S": False}
    [changed_json] = [
        task for task in status.to_json()["tasks"] if task["client_code"] == "C"
    ]
    assert changed_json["documents_changed_after_sending"] is True
    assert "changed after sending" in changed_json["reason"]
