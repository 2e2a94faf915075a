"""Only the finance team may change anything, and only signed requests count."""

from __future__ import annotations

import time

from services.periods import Period
from services.runs import run_status
from tests import slack_fixtures
from tests.slack_fixtures import (
    GROUP_USER,
    OUTSIDER,
    SlackApp,
    add_clients,
    click_send_all,
    sign,
)

slack_standin = slack_fixtures.slack_standin
sendgrid_standin = slack_fixtures.sendgrid_standin
slack_context = slack_fixtures.slack_context
slack_app = slack_fixtures.slack_app

REFUSAL = "Only the finance team may do this."


def test_outsider_is_refused(slack_app: SlackApp) -> None:
    add_clients(slack_app.factory, 2)
    slack_fixtures.generate_month(slack_app)
    jobs_before = slack_app.job_count()

    commands = [
        slack_app.command(text, user=OUTSIDER)
        for text in ("generate", "send", "email K0000 x@example.com", "exclude K0001")
    ]
    clicked = click_send_all(slack_app, user=OUTSIDER)
    slack_fixtures.wait_for(lambda: len(slack_app.slack.responses) >= 5)
    time.sleep(0.5)
    status = run_status(slack_app.factory, Period.parse(slack_fixtures.PERIOD))

    assert all(reply.status == 200 for reply in [*commands, clicked])
    assert [
        response["text"][: len(REFUSAL)] for response in slack_app.slack.responses
    ] == [REFUSAL] * 5
    assert all(
        response["response_type"] == "ephemeral"
        for response in slack_app.slack.responses
    )
    assert slack_app.job_count() == jobs_before
    assert slack_app.mail.mail_requests == []
    assert [task.recipients for task in status.tasks] == [
        ("k0@example.com",),
        ("k1@example.com",),
    ]
    assert status.excluded == []


def test_usergroup_member_may_act(slack_app: SlackApp) -> None:
    add_clients(slack_app.factory, 1)
    slack_fixtures.generate_month(slack_app)

    click_send_all(slack_app, user=GROUP_USER)
    slack_app.wait_for_jobs(2)

    assert len(slack_app.mail.mail_requests) == 1
    assert len(slack_app.slack.calls_to("usergroups.users.list")) == 1


def test_status_is_open_to_everyone(slack_app: SlackApp) -> None:
    add_clients(slack_app.factory, 1)
    slack_fixtures.generate_month(slack_app)

    slack_app.command("status", user=OUTSIDER)
    slack_fixtures.wait_for(lambda: len(slack_app.slack.responses) == 1)

    assert slack_app.slack.responses[0]["text"] == "Statements for 2026-11: generated"


def test_unknown_subcommand_gets_help(slack_app: SlackApp) -> None:
    slack_app.command("frobnicate")
    slack_fixtures.wait_for(lambda: len(slack_app.slack.responses) == 1)

    assert slack_app.slack.responses[0]["text"].startswith("*`/invoices` commands*")


def test_bad_signature_is_rejected(slack_app: SlackApp) -> None:
    stamp = int(time.time())
    forged = sign(b"text=generate", stamp, secret="not-the-secret")

    reply = slack_app.command("generate", signature=forged)

    assert reply.status == 401
    assert slack_app.job_count() == 0


def test_old_timestamp_is_rejected(slack_app: SlackApp) -> None:
    reply = slack_app.command("generate", timestamp=int(time.time()) - 600)

    assert reply.status == 401
    assert slack_app.job_count() == 0
