"""Two OS processes sending the same month at once send each e-mail once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from services import runs
from services.models import ClientTask, TaskState
from services.periods import Period
from tests.factories import COMPANY, add_client, add_document
from tests.standins.sendgrid import (
    API_KEY,
    VERIFIED_SENDER,
    SendGridStandin,
    run_standin,
)

ROOT = Path(__file__).resolve().parent.parent
NOVEMBER = Period(2026, 11)
TASKS = 200

# Builds everything before it reports ready, then waits for the go file, so
# that both processes start sending within milliseconds of each other.
SENDER_SCRIPT = """
import json, sys, time
from pathlib import Path

from bot.settings import load_settings
from services.db import make_engine, make_session_factory
from services.mail import make_backend, sender_from_settings
from services.periods import Period
from services.sending import send_run

ready, go = Path(sys.argv[1]), Path(sys.argv[2])
settings = load_settings()
engine = make_engine(settings.database_url)
factory = make_session_factory(engine)
backend = make_backend(settings)
sender = sender_from_settings(settings)
ready.touch()
while not go.exists():
    time.sleep(0.005)
report = send_run(
    factory, Period.parse("2026-11"), backend=backend, sender=sender,
    actor=f"test:{ready.name}", workers=16,
)
print(json.dumps({"sent": report.sent, "summary": report.summary_line()}))
"""


@pytest.fixture
def standin() -> Iterator[SendGridStandin]:
    """A SendGrid stand-in that takes a few milliseconds, so the senders overlap."""
    yield from run_standin(latency=0.005)


@pytest.fixture
def november(factory: sessionmaker[Session]) -> None:
    """November with one ready client task for each of 200 clients."""
    with factory() as session, session.begin():
        for number in range(TASKS):
            client = add_client(
                session,
                f"K{number:03d}",
                f"Klientas {number:03d}",
                emails=(f"klientas{number:03d}@example.com",),
            )
            add_document(
                session, client, f"S-{number:03d}", date(2026, 11, 5), "10.00", "2.10"
            )
    runs.create_run(
        factory,
        NOVEMBER,
        planned_start=date(2026, 12, 3),
        planned_end=date(2026, 12, 10),
        actor="test",
    )
    runs.generate_run(factory, NOVEMBER, company=COMPANY, actor="test")


def _start_sender(
    name: str, database_url: str, standin: SendGridStandin, folder: Path
) -> subprocess.Popen[str]:
    environment = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": database_url,
        "SENDGRID_API_KEY": API_KEY,
        "SENDGRID_API_HOST": standin.url,
        "MAIL_FROM": VERIFIED_SENDER,
        "MAIL_FROM_NAME": "Bandymų įmonė",
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            SENDER_SCRIPT,
            str(folder / f"{name}.ready"),
            str(folder / "go"),
        ],
        cwd=folder,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_ready(folder: Path, names: list[str], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not all((folder / f"{name}.ready").exists() for name in names):
        assert time.monotonic() < deadline, "a sending process did not start"
        time.sleep(0.02)


@pytest.mark.usefixtures("november")
def test_two_processes_send_each_once(
    database_url: str,
    factory: sessionmaker[Session],
    standin: SendGridStandin,
    tmp_path: Path,
) -> None:
    names = ["first", "second"]
    senders = [_start_sender(name, database_url, standin, tmp_path) for name in names]
    _wait_ready(tmp_path, names)

    (tmp_path / "go").touch()
    results = [sender.communicate(timeout=240) for sender in senders]

    for sender, (_stdout, stderr) in zip(senders, results, strict=True):
        assert sender.returncode == 0, stderr
    reports = [json.loads(stdout.strip().splitlines()[-1]) for stdout, _ in results]
    requests = Counter(request.client_task_id for request in standin.mail_requests)
    with factory() as session:
        task_ids = {str(task_id) for task_id in session.scalars(select(ClientTask.id))}
        sent = session.scalar(
            select(func.count(ClientTask.id)).where(ClientTask.state == TaskState.SENT)
        )
    assert len(standin.mail_requests) == TASKS
    assert set(requests) == task_ids
    assert max(requests.values()) == 1
    assert sum(report["sent"] for report in reports) == TASKS
    assert all(report["sent"] > 0 for report in reports), "the senders did not overlap"
    assert sent == TASKS
