"""Only tasks whose request is in flight are claimed, so a crash strands no others."""

from __future__ import annotations

import threading

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from services.mail import OutgoingMessage, Sender
from services.models import AuditEvent, ClientTask, TaskState
from services.sending import send_run
from services.sending.claims import _Claim, _Delivery, _record_batch
from services.sending.retries import _send_with_retries
from tests.test_sending import ACTOR, PERIOD, SENDER, add_task, run_id

# The `run_id` fixture is imported above so that pytest finds it in this module.
__all__ = ["run_id"]


class GatedBackend:
    """A backend whose sends wait until the test opens the gate."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.started = threading.Semaphore(0)

    def send(self, message: OutgoingMessage, sender: Sender) -> str:
        self.started.release()
        assert self.gate.wait(timeout=30)
        return f"message-{message.task_id}"

    def close(self) -> None:
        return None


def _sending(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        count = session.scalar(
            select(func.count(ClientTask.id)).where(
                ClientTask.state == TaskState.SENDING
            )
        )
    return int(count or 0)


def test_claims_no_more_than_in_flight(
    factory: sessionmaker[Session], run_id: int
) -> None:
    for index in range(6):
        add_task(factory, f"K-{index}")
    backend = GatedBackend()
    result: list[int] = []
    sender = threading.Thread(
        target=lambda: result.append(
            send_run(
                factory,
                PERIOD,
                backend=backend,
                sender=SENDER,
                actor=ACTOR,
                workers=2,
            ).sent
        )
    )

    sender.start()
    assert backend.started.acquire(timeout=30)
    assert backend.started.acquire(timeout=30)
    in_flight = _sending(factory)
    backend.gate.set()
    sender.join(timeout=60)

    assert in_flight == 2
    assert result == [6]
    assert _sending(factory) == 0


def test_task_never_requested_is_audited_not_attempted(
    factory: sessionmaker[Session], run_id: int
) -> None:
    task_id = add_task(factory, "K-1", state=TaskState.SENDING, claim_token="token")
    delivery = _Delivery(
        factory, str(PERIOD), GatedBackend(), SENDER, ACTOR, 3, lambda _: None
    )
    delivery.halt.stop("SendGrid rejected the API key (401)")
    message = OutgoingMessage(
        to=("ona@example.com",),
        subject="s",
        text="t",
        attachment_filename="f.pdf",
        attachment=b"%PDF",
    )

    attempt = _send_with_retries(delivery, _Claim(task_id, "K-1", "token", message))
    _record_batch(delivery, [(_Claim(task_id, "K-1", "token", message), attempt)])

    with factory() as session:
        task = session.get(ClientTask, task_id)
        details = list(session.scalars(select(AuditEvent.detail)))
    assert attempt.requested is False
    assert task is not None
    assert task.state is TaskState.READY
    assert details == ["not attempted: SendGrid rejected the API key (401)"]
