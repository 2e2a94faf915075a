"""PDF uploads to the month's thread go on after rate limits and failures."""

from __future__ import annotations

import pytest

from tests import slack_fixtures
from tests.slack_fixtures import CHANNEL, SlackApp, add_clients, click_send_all

slack_standin = slack_fixtures.slack_standin
sendgrid_standin = slack_fixtures.sendgrid_standin
slack_context = slack_fixtures.slack_context
slack_app = slack_fixtures.slack_app


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    "method", ["upload", "files.getUploadURLExternal", "files.completeUploadExternal"]
)
def test_rate_limited_uploads_lose_nothing(slack_app: SlackApp, method: str) -> None:
    add_clients(slack_app.factory, 3)
    slack_app.slack.rate_limit(method, retry_after=1, times=2)

    message = slack_fixtures.generate_month(slack_app)

    calls = slack_app.slack.calls_to(method)
    limited = [call for call in calls if call.status == 429]
    assert len(slack_app.slack.shared_files(CHANNEL, message.ts)) == 3
    assert len(limited) == 2
    assert calls[2].at - calls[0].at >= 2.0


def test_failed_upload_does_not_stop_sending(slack_app: SlackApp) -> None:
    add_clients(slack_app.factory, 3)
    slack_app.slack.fail("files.completeUploadExternal", "not_in_channel")

    message = slack_fixtures.generate_month(slack_app)
    summary = str(message.blocks)
    click_send_all(slack_app)
    slack_app.wait_for_jobs(2)

    assert len(slack_app.slack.shared_files(CHANNEL, message.ts)) == 2
    assert len(slack_app.slack.thread(CHANNEL, message.ts)) == 4
    assert "could not be uploaded: K0000" in summary
    assert len(slack_app.mail.mail_requests) == 3
