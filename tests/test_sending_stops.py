"""A month's sending stops when SendGrid rejects the account, and can retry failures."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from services.errors import InvalidStateError
from services.models import ClientTask, Run, RunState, TaskState, utcnow
from services.sendgrid_backend import SendGridBackend
from services.sending import SendResult, send_run
from tests.standins.sendgrid import API_KEY, SendGridStandin, run_standin
from tests.test_sending import (
    ACTOR,
    PERIOD,
    SENDER,
    add_task,
    backend,
    run_id,
    task_of,
)

CODES = ("K-1", "K-2", "K-3")
# The `run_id` fixture is imported above so that pytest finds it in this module.
__all__ = ["run_id"]


@pytest.fixture
def sendgrid_standin() -> Iterator[SendGridStandin]:
    yield from run_standin()


@pytest.fixture
def tasks(factory: sessionmaker[Session], run_id: int) -> list[int]:
    return [add_task(factory, code) for code in CODES]


def test_rejected_key_stops_the_month(
    factory: sessionmaker[Session], tasks: list[int], sendgrid_standin: SendGridStandin
) -> None:
    wrong_key = SendGridBackend(
        api_key=API_KEY + "-wrong", host=sendgrid_standin.url, timeout=5.0
    )

    report = send_run(
        factory, PERIOD, backend=wrong_key, sender=SENDER, actor=ACTOR, workers=1
    )

    states = [task_of(factory, task_id).state for task_id in tasks]
    again = send_run(
        factory,
        PERIOD,
        backend=backend(sendgrid_standin),
        sender=SENDER,
        actor=ACTOR,
        workers=1,
    )

    assert len(sendgrid_standin.mail_requests) == 4
    assert report.failed == 0
    assert report.stopped == 3
    assert "left ready after the stop 3" in report.summary_line()
    assert "401" in report.stop_reason
    assert states == [TaskState.READY] * 3
    assert task_of(factory, tasks[0]).failure_reason == ""
    assert again.sent == 3
    assert again.stop_reason == ""


def test_unverified_sender_stops_the_month(
    factory: sessionmaker[Session], tasks: list[int], sendgrid_standin: SendGridStandin
) -> None:
    sendgrid_standin.verified_senders.clear()

    report = send_run(
        factory,
        PERIOD,
        backend=backend(sendgrid_standin),
        sender=SENDER,
        actor=ACTOR,
        workers=1,
    )

    outcomes = {outcome.client_code: outcome.result for outcome in report.outcomes}
    assert outcomes == {
        "K-1": SendResult.STOPPED,
        "K-2": SendResult.STOPPED,
        "K-3": SendResult.STOPPED,
    }
    assert "403" in report.stop_reason
    assert task_of(factory, tasks[0]).state is TaskState.READY


def test_retry_failed_sends_failed_tasks(
    factory: sessionmaker[Session], tasks: list[int], sendgrid_standin: SendGridStandin
) -> None:
    sendgrid_standin.fail(400, "The content value must be a string")
    first = send_run(
        factory,
        PERIOD,
        backend=backend(sendgrid_standin),
        sender=SENDER,
        actor=ACTOR,
        workers=1,
    )
    plain = send_run(
        factory, PERIOD, backend=backend(sendgrid_standin), sender=SENDER, actor=ACTOR
    )

    retried = send_run(
        factory,
        PERIOD,
        backend=backend(sendgrid_standin),
        sender=SENDER,
        actor=ACTOR,
        retry_failed=True,
    )

    assert first.failed == 1
    assert plain.sent == 0
    assert plain.failed_earlier == 1
    assert retried.sent == 1
    assert {task_of(factory, task_id).state for task_id in tasks} == {TaskState.SENT}
    assert len(sendgrid_standin.mail_requests) == 4


def test_send_rejects_month_not_generated(
    factory: sessionmaker[Session], tasks: list[int], sendgrid_standin: SendGridStandin
) -> None:
    with factory.begin() as session:
        session.scalars(select(Run)).one().state = RunState.PLANNED

    with pytest.raises(InvalidStateError, match="not generated yet"):
        send_run(
            factory,
            PERIOD,
            backend=backend(sendgrid_standin),
            sender=SENDER,
            actor=ACTOR,
        )

    assert sendgrid_standin.mail_requests == []


class Interrupted(Exception):
    """Stands for Ctrl-C or a stopping worker, raised from the progress report."""


def _send_interrupted(
    factory: sessionmaker[Session],
    standin: SendGridStandin,
    interrupt: Callable[[int, int, str], None],
) -> None:
    """Send the month on 4 threads with `interrupt` as the progress report."""
    send_run(
        factory,
        PERIOD,
        backend=backend(standin),
        sender=SENDER,
        actor=ACTOR,
        workers=4,
        progress=interrupt,
    )


def test_interrupted_send_records_what_went_out(
    factory: sessionmaker[Session], run_id: int, sendgrid_standin: SendGridStandin
) -> None:
    task_ids = [add_task(factory, f"K-{n:02d}") for n in range(12)]
    sendgrid_standin.latency = 0.2

    def interrupt(done: int, total: int, label: str) -> None:
        if done == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        _send_interrupted(factory, sendgrid_standin, interrupt)

    states = [task_of(factory, task_id).state for task_id in task_ids]
    sent = len(sendgrid_standin.mail_requests)
    assert TaskState.SENDING not in states
    assert states.count(TaskState.SENT) == sent
    assert states.count(TaskState.READY) == 12 - sent
    assert 2 <= sent < 12


def test_task_left_sending_is_reported_apart(
    factory: sessionmaker[Session], run_id: int, sendgrid_standin: SendGridStandin
) -> None:
    add_task(factory, "K-1", state=TaskState.SENDING, claimed_at=utcnow())
    add_task(factory, "K-2")

    report = send_run(
        factory, PERIOD, backend=backend(sendgrid_standin), sender=SENDER, actor=ACTOR
    )

    assert report.sent == 1
    assert report.skipped == 0
    assert report.being_sent == 1
    assert len(sendgrid_standin.mail_requests) == 1


def test_interrupted_refusal_report_strands_nothing(
    factory: sessionmaker[Session], run_id: int, sendgrid_standin: SendGridStandin
) -> None:
    stale = add_task(factory, "K-00")
    with factory.begin() as session:
        task = session.get(ClientTask, stale)
        assert task is not None
        task.documents_fingerprint = "made before its documents changed"
    others = [add_task(factory, f"K-{n:02d}") for n in range(1, 4)]

    def interrupt(done: int, total: int, label: str) -> None:
        raise Interrupted

    with pytest.raises(Interrupted):
        _send_interrupted(factory, sendgrid_standin, interrupt)

    assert task_of(factory, stale).state is TaskState.STALE
    assert [task_of(factory, task_id).state for task_id in others] == [
        TaskState.SENT
    ] * 3
    assert len(sendgrid_standin.mail_requests) == 3
