"""The `/invoices` subcommands: send, status, email, exclude and include."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from services.db import transaction
from services.models import AuditEvent, Client, TaskState
from services.periods import Period
from services.runs import RunStatus, create_run, generate_run, run_status
from tests import factories, slack_fixtures
from tests.slack_fixtures import (
    CHANNEL,
    FINANCE_USER,
    OUTSIDER,
    PERIOD,
    SlackApp,
    add_clients,
    buttons,
    wait_for,
)
from tests.standins.slack import MAX_MESSAGE_BLOCKS, block_problems

slack_standin = slack_fixtures.slack_standin
sendgrid_standin = slack_fixtures.sendgrid_standin
slack_context = slack_fixtures.slack_context
slack_app = slack_fixtures.slack_app

REFUSAL = "Only the finance team may do this."


def _reply(app: SlackApp, text: str, **options: Any) -> dict[str, Any]:
    """Type the command and return the reply that reached the response_url."""
    count = len(app.slack.responses)
    app.command(text, **options)
    wait_for(lambda: len(app.slack.responses) > count)
    [reply] = app.slack.responses[count:]
    return reply


def _generate(app: SlackApp) -> RunStatus:
    """Create and generate the month in the services, without Slack messages."""
    period = Period.parse(PERIOD)
    create_run(
        app.factory,
        period,
        planned_start=date(2026, 12, 1),
        planned_end=date(2026, 12, 10),
        actor="test",
    )
    generate_run(app.factory, period, company=app.context.company, actor="test")
    return run_status(app.factory, period)


def _client(app: SlackApp, code: str) -> Client:
    with app.factory() as session:
        client = session.scalars(
            select(Client)
            .options(selectinload(Client.emails))
            .where(Client.code == code)
        ).one()
        session.expunge_all()
    return client


def _addresses(app: SlackApp, code: str) -> list[str]:
    return [email.address for email in _client(app, code).emails]


def _audit_actions(app: SlackApp) -> list[str]:
    with app.factory() as session:
        return list(session.scalars(select(AuditEvent.action)))


def _task_state(app: SlackApp, code: str) -> TaskState:
    status = run_status(app.factory, Period.parse(PERIOD))
    [state] = [task.state for task in status.tasks if task.client_code == code]
    return state


def _add_named_clients(app: SlackApp, names: dict[str, str]) -> None:
    with transaction(app.factory) as session:
        for code, name in names.items():
            factories.add_client(session, code, name, emails=(f"{code}@example.com",))


# Sending.


def test_send_command_only_offers_button(slack_app: SlackApp) -> None:
    add_clients(slack_app.factory, 3, without_email=frozenset({2}))
    slack_fixtures.generate_month(slack_app)
    jobs_before = slack_app.job_count()

    reply = _reply(slack_app, f"send {PERIOD}")

    assert reply["response_type"] == "ephemeral"
    assert reply["text"] == "2 clients of 2026-11 are ready; Send all sends them."
    assert block_problems(reply["blocks"], max_blocks=MAX_MESSAGE_BLOCKS) == []
    [send_all] = buttons(reply["blocks"], "run_send_all")
    assert send_all["confirm"]["title"]["text"] == "Send 2026-11?"
    assert "2 clients" in send_all["confirm"]["text"]["text"]
    assert buttons(reply["blocks"], "run_generate") == []
    assert slack_app.job_count() == jobs_before
    assert slack_app.mail.mail_requests == []
    assert _task_state(slack_app, "K0000") is TaskState.READY


def test_send_button_in_reply_sends_once(slack_app: SlackApp) -> None:
    add_clients(slack_app.factory, 3, without_email=frozenset({2}))
    month = slack_fixtures.generate_month(slack_app)
    reply = _reply(slack_app, f"send {PERIOD}")
    [send_all] = buttons(reply["blocks"], "run_send_all")

    clicks = [
        slack_app.click("run_send_all", send_all["value"], ephemeral=True)
        for _ in range(2)
    ]
    slack_app.wait_for_jobs(2)
    status = run_status(slack_app.factory, Period.parse(PERIOD))
    sent = Counter(request.client_task_id for request in slack_app.mail.mail_requests)
    again = _reply(slack_app, f"send {PERIOD}")

    assert [click.status for click in clicks] == [200, 200]
    assert len(sent) == 2
    assert set(sent.values()) == {1}
    assert Counter(task.state for task in status.tasks) == Counter(
        {TaskState.SENT: 2, TaskState.MISSING_EMAIL: 1}
    )
    replaced = [
        item for item in slack_app.slack.responses if item.get("replace_original")
    ]
    assert len(replaced) == 1
    assert replaced[0]["text"].startswith("Sending every ready client of 2026-11")
    report = slack_app.slack.thread(CHANNEL, month.ts)[-1]
    assert report.text.startswith("*Sending 2026-11 finished.* Sent 2")
    assert again["text"] == "No client task of 2026-11 is ready to send."
    assert buttons(again["blocks"], "run_send_all") == []


# Status.


def test_status_counts_within_limits(slack_app: SlackApp) -> None:
    add_clients(slack_app.factory, 30, long_names=True, without_email=frozenset({3, 7}))
    add_clients(slack_app.factory, 3, excluded=True, first=30)
    _generate(slack_app)

    reply = _reply(slack_app, f"status {PERIOD}")

    text = json.dumps(reply["blocks"], ensure_ascii=False)
    assert reply["response_type"] == "ephemeral"
    assert reply["text"] == "Statements for 2026-11: generated"
    assert block_problems(reply["blocks"], max_blocks=MAX_MESSAGE_BLOCKS) == []
    assert "*Clients:* 30    *Documents:* 30" in text
    assert "*States:* missing e-mail 2, ready to send 28" in text
    assert "*Missing an address (2):*" in text
    assert "*Excluded (3):*" in text
    assert "…and 10 more" in text
    assert buttons(reply["blocks"], "run_send_all") == []


# Addresses.


def test_email_makes_task_ready(slack_app: SlackApp) -> None:
    add_clients(slack_app.factory, 2, without_email=frozenset({1}))
    month = slack_fixtures.generate_month(slack_app)

    reply = _reply(slack_app, "email K0001 naujas@example.com")

    # The messages are redrawn after the reply, so wait for the month's message.
    wait_for(
        lambda: (
            "ready to send 2"
            in json.dumps(slack_fixtures.month_message(slack_app).blocks)
        )
    )
    [message] = [
        item
        for item in slack_app.slack.thread(CHANNEL, month.ts)
        if "(K0001):" in item.text
    ]
    assert reply["response_type"] == "ephemeral"
    assert reply["text"] == "K0001 now gets statements at naujas@example.com."
    assert _task_state(slack_app, "K0001") is TaskState.READY
    assert _addresses(slack_app, "K0001") == ["naujas@example.com"]
    assert len(buttons(message.blocks, "task_send")) == 1
    assert "ready to send 2" in json.dumps(
        slack_fixtures.month_message(slack_app).blocks
    )


def test_invalid_email_changes_nothing(slack_app: SlackApp) -> None:
    add_clients(slack_app.factory, 2, without_email=frozenset({1}))
    _generate(slack_app)
    actions_before = _audit_actions(slack_app)

    reply = _reply(slack_app, "email K0001 naujas(at)example.com")

    assert reply["response_type"] == "ephemeral"
    assert reply["text"].startswith(
        "Could not set the e-mail address: invalid e-mail address "
        "'naujas(at)example.com'"
    )
    assert _task_state(slack_app, "K0001") is TaskState.MISSING_EMAIL
    assert _addresses(slack_app, "K0001") == []
    assert _audit_actions(slack_app) == actions_before


# Exclusion.


def test_exclude_and_include_client(slack_app: SlackApp) -> None:
    add_clients(slack_app.factory, 2)
    period = Period.parse(PERIOD)

    excluded = _reply(slack_app, "exclude K0001 paid in advance")
    first = _generate(slack_app)
    included = _reply(slack_app, "include K0001")
    generate_run(
        slack_app.factory, period, company=slack_app.context.company, actor="t"
    )
    second = run_status(slack_app.factory, period)

    assert excluded["text"] == "K0001 is excluded: paid in advance"
    assert [task.client_code for task in first.tasks] == ["K0000"]
    assert [(item.client_code, item.reason) for item in first.excluded] == [
        ("K0001", "paid in advance")
    ]
    assert included["text"] == "K0001 is included again; Generate adds its task."
    assert _client(slack_app, "K0001").excluded is False
    assert [task.client_code for task in second.tasks] == ["K0000", "K0001"]
    assert second.excluded == []
    assert "client excluded" in _audit_actions(slack_app)
    assert "client included" in _audit_actions(slack_app)


# Finding a client.


@pytest.mark.parametrize(
    "query",
    ["ŠILELIO", "šilelio ŪKIS", "Ūkis, mb", "k0100"],
    ids=["upper-case", "mixed-case", "name-end", "code-lower-case"],
)
def test_client_found_by_name_part(slack_app: SlackApp, query: str) -> None:
    _add_named_clients(slack_app, {"K0100": "Šilelio ūkis, MB", "K0101": "UAB Ąžuolas"})

    reply = _reply(slack_app, f'exclude "{query}" sezoninis')

    assert reply["text"] == "K0100 is excluded: sezoninis"
    assert _client(slack_app, "K0100").excluded is True
    assert _client(slack_app, "K0101").excluded is False


def test_ambiguous_client_lists_candidates(slack_app: SlackApp) -> None:
    _add_named_clients(
        slack_app,
        {"K0100": "Šilelio ūkis, MB", "K0101": "Šilelio mediena, UAB", "K0102": "Kita"},
    )

    reply = _reply(slack_app, "exclude šilelio sezoninis")

    assert reply["text"].startswith(
        "Could not exclude the client: 'šilelio' matches several clients: "
        "K0100 Šilelio ūkis, MB; K0101 Šilelio mediena, UAB."
    )
    assert "Give the client code instead" in reply["text"]
    assert "K0102" not in reply["text"]
    assert [_client(slack_app, code).excluded for code in ("K0100", "K0101")] == [
        False,
        False,
    ]


def test_unknown_client_is_named(slack_app: SlackApp) -> None:
    _add_named_clients(slack_app, {"K0100": "Šilelio ūkis, MB"})

    reply = _reply(slack_app, "include Beržynas")

    assert reply["text"].startswith(
        "Could not include the client: no client has the code 'Beržynas' or a "
        "name containing it"
    )


# Who may act.


@pytest.mark.parametrize(
    "text",
    [
        "email K0001 naujas@example.com",
        "exclude K0000 prepaid",
        "include K0002",
        '"email" K0001 naujas@example.com',
        "'EXCLUDE' K0000 prepaid",
        "e\\mail K0001 naujas@example.com",
    ],
    ids=["email", "exclude", "include", "quoted", "quoted-capitals", "escaped"],
)
def test_outsider_cannot_change_clients(slack_app: SlackApp, text: str) -> None:
    add_clients(slack_app.factory, 2, without_email=frozenset({1}))
    add_clients(slack_app.factory, 1, excluded=True, first=2)

    reply = _reply(slack_app, text, user=OUTSIDER)

    assert reply["text"].startswith(REFUSAL)
    assert reply["response_type"] == "ephemeral"
    assert _addresses(slack_app, "K0000") == ["k0@example.com"]
    assert _addresses(slack_app, "K0001") == []
    assert [_client(slack_app, code).excluded for code in ("K0000", "K0002")] == [
        False,
        True,
    ]
    assert _audit_actions(slack_app) == []


# Generate.


def test_generate_unknown_month_is_explained(slack_app: SlackApp) -> None:
    jobs_before = slack_app.job_count()

    reply = _reply(slack_app, "generate 2099-01")

    assert "there is no monthly task for 2099-01" in reply["text"]
    assert slack_app.job_count() == jobs_before


def test_generate_open_month_is_explained(slack_app: SlackApp) -> None:
    today = date.today()
    period = Period(today.year, today.month)
    create_run(
        slack_app.factory,
        period,
        planned_start=period.end,
        planned_end=period.end,
        actor="test",
    )
    jobs_before = slack_app.job_count()

    reply = _reply(slack_app, f"generate {period}")

    assert f"{period} has not ended yet" in reply["text"]
    assert slack_app.job_count() == jobs_before


def test_app_outside_channel_reports_privately(slack_app: SlackApp) -> None:
    add_clients(slack_app.factory, 2)
    create_run(
        slack_app.factory,
        Period.parse(PERIOD),
        planned_start=date(2026, 12, 1),
        planned_end=date(2026, 12, 10),
        actor="test",
    )
    slack_app.slack.fail("chat.postMessage", "not_in_channel", times=1000)

    _reply(slack_app, f"generate {PERIOD}")
    slack_app.wait_for_jobs(1)
    [send_all] = buttons(_reply(slack_app, f"send {PERIOD}")["blocks"], "run_send_all")
    slack_app.click("run_send_all", send_all["value"], ephemeral=True)
    slack_app.wait_for_jobs(2)
    texts = [item.text for item in slack_app.slack.ephemerals_to(FINANCE_USER)]

    assert slack_app.slack.top_level(CHANNEL) == []
    assert any("the app is not a member of <#C0FINANCE>" in text for text in texts)
    assert any(text.startswith("Generated the client tasks") for text in texts)
    assert any(text.startswith("*Sending 2026-11 finished.*") for text in texts)
    assert len(slack_app.mail.mail_requests) == 2


@pytest.mark.parametrize("action_id", ["run_generate", "run_send_all"])
def test_job_for_missing_month_is_explained(
    slack_app: SlackApp, action_id: str
) -> None:
    slack_app.click(action_id, json.dumps({"period": "2031-01"}))
    slack_app.wait_for_jobs(1)

    [reply] = slack_app.slack.ephemerals_to(FINANCE_USER)
    assert "2031-01" in reply.text
    assert "invoices run create 2031-01" in reply.text
