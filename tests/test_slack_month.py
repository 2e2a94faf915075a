"""A whole month through Slack, on the Slack and SendGrid stand-ins."""

from __future__ import annotations

import json
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update

from bot import slack_blocks
from bot.slack_notifier import SlackNotifier, SlackPostError
from services.models import Run, RunState, TaskState
from services.periods import Period
from services.runs import create_run, run_status
from services.scheduling import Schedule, post_month, send_reminders
from tests import slack_fixtures
from tests.slack_fixtures import CHANNEL, PERIOD, SlackApp, add_clients

slack_standin = slack_fixtures.slack_standin
sendgrid_standin = slack_fixtures.sendgrid_standin
slack_context = slack_fixtures.slack_context
slack_app = slack_fixtures.slack_app


def _month_message(app: SlackApp) -> slack_fixtures.Message:
    [message] = app.slack.top_level(CHANNEL)
    return message


def _buttons(
    blocks: list[dict[str, object]], action_id: str
) -> list[dict[str, object]]:
    return [
        element
        for block in blocks
        if block["type"] == "actions"
        for element in block["elements"]  # type: ignore[attr-defined]
        if element["action_id"] == action_id
    ]


def test_month_from_new_to_sent(slack_app: SlackApp) -> None:
    codes = add_clients(slack_app.factory, 3, without_email=frozenset({2}))

    opened = slack_app.command("new")
    created = slack_app.new_run(PERIOD, date(2026, 12, 1), date(2026, 12, 10))
    slack_fixtures.wait_for(lambda: len(slack_app.slack.top_level(CHANNEL)) == 1)
    message = _month_message(slack_app)
    [generate] = _buttons(message.blocks, slack_blocks.GENERATE)
    slack_app.click(
        slack_blocks.GENERATE, str(generate["value"]), message_ts=message.ts
    )
    slack_app.wait_for_jobs(1)

    thread = slack_app.slack.thread(CHANNEL, message.ts)
    files = slack_app.slack.shared_files(CHANNEL, message.ts)
    message = _month_message(slack_app)
    [send_all] = _buttons(message.blocks, slack_blocks.SEND_ALL)
    slack_app.click(
        slack_blocks.SEND_ALL, str(send_all["value"]), message_ts=message.ts
    )
    slack_app.wait_for_jobs(2)
    status = run_status(slack_app.factory, Period.parse(PERIOD))

    assert opened.status == 200
    assert created.status == 200
    assert slack_app.slack.views[0]["callback_id"] == slack_blocks.NEW_RUN_VIEW
    assert len(thread) == 3
    assert sorted(item.filename.split("-")[0] for item in files) or files
    assert len(files) == 3
    assert all(item.content.startswith(b"%PDF") for item in files)
    assert "confirm" in send_all
    sent_to = [request.client_task_id for request in slack_app.mail.mail_requests]
    assert len(sent_to) == 2
    assert len(set(sent_to)) == 2
    states = {task.client_code: task.state for task in status.tasks}
    assert states == {
        codes[0]: TaskState.SENT,
        codes[1]: TaskState.SENT,
        codes[2]: TaskState.MISSING_EMAIL,
    }
    assert status.run.state is RunState.GENERATED
    report = slack_app.slack.thread(CHANNEL, message.ts)[-1]
    assert report.text.startswith("*Sending 2026-11 finished.*")
    sent_messages = [
        item
        for item in slack_app.slack.thread(CHANNEL, message.ts)
        if "Sent 20" in json.dumps(item.blocks)
    ]
    assert len(sent_messages) == 2
    assert not _buttons(sent_messages[0].blocks, slack_blocks.SEND)
    assert all(reply.seconds < 3 for reply in slack_app.replies)


def test_refused_month_message_is_explained_to_its_creator(
    slack_app: SlackApp,
) -> None:
    slack_app.slack.fail("chat.postMessage", "not_in_channel")

    created = slack_app.new_run(PERIOD, date(2026, 12, 1), date(2026, 12, 10))
    slack_fixtures.wait_for(
        lambda: bool(slack_app.slack.ephemerals_to(slack_fixtures.FINANCE_USER))
    )
    [reply] = slack_app.slack.ephemerals_to(slack_fixtures.FINANCE_USER)
    status = run_status(slack_app.factory, Period.parse(PERIOD))

    assert created.status == 200
    assert slack_app.slack.top_level(CHANNEL) == []
    assert status.run.state is RunState.PLANNED
    assert "the app is not a member of <#C0FINANCE>" in reply.text
    assert "`/invite @invoices`" in reply.text
    assert f"`/invoices generate {PERIOD}`" in reply.text


def test_refusal_reaches_creator_by_direct_message(
    slack_app: SlackApp,
) -> None:
    slack_app.slack.fail("chat.postMessage", "channel_not_found")
    slack_app.slack.fail("chat.postEphemeral", "channel_not_found")

    slack_app.new_run(PERIOD, date(2026, 12, 1), date(2026, 12, 10))
    slack_fixtures.wait_for(
        lambda: bool(slack_app.slack.top_level(slack_fixtures.FINANCE_USER))
    )
    [direct] = slack_app.slack.top_level(slack_fixtures.FINANCE_USER)

    assert "does not exist or the app cannot see it" in direct.text
    assert "SLACK_CHANNEL" in direct.text
    assert slack_app.slack.top_level(CHANNEL) == []


def test_reminder_goes_in_thread_and_channel(slack_app: SlackApp) -> None:
    add_clients(slack_app.factory, 1)
    month = slack_fixtures.generate_month(slack_app)
    notifier = SlackNotifier(slack_app.context)

    notifier.post_reminder(Period.parse(PERIOD), "Reminder: 1 client is not sent.")

    reply = slack_app.slack.thread(CHANNEL, month.ts)[-1]
    [call] = [
        call
        for call in slack_app.slack.calls_to("chat.postMessage")
        if call.params.get("text", "").startswith("Reminder:")
    ]
    assert reply.text == "Reminder: 1 client is not sent."
    assert call.params["reply_broadcast"] is True


def test_reminder_without_month_message_is_top_level(slack_app: SlackApp) -> None:
    slack_app.new_run(PERIOD, date(2026, 12, 1), date(2026, 12, 10))
    slack_fixtures.wait_for(lambda: len(slack_app.slack.top_level(CHANNEL)) == 1)
    with slack_app.factory() as session, session.begin():
        session.execute(update(Run).values(slack_ts="", slack_channel=""))

    SlackNotifier(slack_app.context).post_reminder(Period.parse(PERIOD), "Reminder!")

    assert [item.text for item in slack_app.slack.top_level(CHANNEL)][-1] == (
        "Reminder!"
    )


def test_refused_scheduled_post_is_retried(slack_app: SlackApp) -> None:
    zone = ZoneInfo("Europe/Vilnius")
    schedule = Schedule(day=1, at=time(9, 0), zone=zone)
    create_run(
        slack_app.factory,
        Period.parse(PERIOD),
        planned_start=date(2026, 12, 3),
        planned_end=date(2026, 12, 10),
        actor="cli",
    )
    notifier = SlackNotifier(slack_app.context)
    slack_app.slack.fail("chat.postMessage", "not_in_channel")

    with pytest.raises(SlackPostError):
        post_month(
            slack_app.factory,
            notifier,
            schedule,
            now=datetime(2026, 12, 1, 9, 1, tzinfo=zone),
        )
    retried = post_month(
        slack_app.factory,
        notifier,
        schedule,
        now=datetime(2026, 12, 1, 9, 16, tzinfo=zone),
    )

    assert retried is not None
    assert retried.posted
    assert len(slack_app.slack.top_level(CHANNEL)) == 1


def test_refused_reminder_stays_due(slack_app: SlackApp) -> None:
    zone = ZoneInfo("Europe/Vilnius")
    add_clients(slack_app.factory, 1)
    month = slack_fixtures.generate_month(slack_app)
    notifier = SlackNotifier(slack_app.context)
    late = datetime(2026, 12, 11, 9, 0, tzinfo=zone)
    slack_app.slack.fail("chat.postMessage", "ratelimited")

    with pytest.raises(SlackPostError):
        send_reminders(slack_app.factory, notifier, zone, now=late)
    posted = send_reminders(slack_app.factory, notifier, zone, now=late)

    assert posted == [f"remind-end:{PERIOD}"]
    assert "planned to end" in slack_app.slack.thread(CHANNEL, month.ts)[-1].text
