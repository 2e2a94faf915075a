"""Fixtures for Slack tests: the stand-ins, the running app and signed requests.

Test modules take these fixtures by assigning them to module names, for
example `slack_app = slack_fixtures.slack_app`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.context import AppContext, build_context
from bot.settings import Settings
from bot.slack_app import create_app
from bot.slack_client import make_web_client
from bot.web import WebApp, make_http_server
from bot.worker import start_worker_thread
from services import jobs
from services.db import transaction
from services.models import DocumentType, Job
from tests import factories
from tests.standins import sendgrid
from tests.standins.slack import BOT_TOKEN, Message, SlackStandin

__all__ = ["Message"]

SIGNING_SECRET = "standin-signing-secret"
CHANNEL = "C0FINANCE"
FINANCE_USER = "U0FIN1"
SECOND_FINANCE_USER = "U0FIN2"
GROUP_USER = "U0GROUP"
FINANCE_GROUP = "S0FINANCE"
OUTSIDER = "U0OUTSIDE"
PERIOD = "2026-11"


def sign(body: bytes, timestamp: int, secret: str = SIGNING_SECRET) -> str:
    """Sign a request as Slack does: HMAC-SHA256 of `v0:timestamp:body`."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass
class Reply:
    status: int
    body: str
    seconds: float


@dataclass
class SlackApp:
    """The running app on 127.0.0.1 with the stand-ins it talks to."""

    url: str
    context: AppContext
    slack: SlackStandin
    mail: sendgrid.SendGridStandin
    worker: jobs.Worker
    replies: list[Reply] = field(default_factory=list)

    @property
    def factory(self) -> sessionmaker[Session]:
        return self.context.factory

    def post(
        self,
        body: bytes,
        *,
        content_type: str = "application/x-www-form-urlencoded",
        timestamp: int | None = None,
        signature: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """POST a signed body to /slack/events and time the answer."""
        stamp = int(time.time()) if timestamp is None else timestamp
        request = urllib.request.Request(
            self.url + "/slack/events",
            data=body,
            method="POST",
            headers={
                "Content-Type": content_type,
                "X-Slack-Request-Timestamp": str(stamp),
                "X-Slack-Signature": signature or sign(body, stamp),
                **(headers or {}),
            },
        )
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                reply = Reply(response.status, response.read().decode(), 0.0)
        except urllib.error.HTTPError as error:
            reply = Reply(error.code, error.read().decode(), 0.0)
        reply.seconds = time.monotonic() - started
        self.replies.append(reply)
        return reply

    def command(self, text: str, *, user: str = FINANCE_USER, **options: Any) -> Reply:
        form = {
            "token": "legacy",
            "team_id": "T0STANDIN",
            "channel_id": CHANNEL,
            "user_id": user,
            "user_name": user.lower(),
            "command": "/invoices",
            "text": text,
            "response_url": self.slack.response_url("command"),
            "trigger_id": f"trigger-{time.monotonic_ns()}",
            "api_app_id": "A0APP",
        }
        return self.post(urllib.parse.urlencode(form).encode(), **options)

    def interaction(self, payload: dict[str, Any], **options: Any) -> Reply:
        body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
        return self.post(body, **options)

    def click(
        self,
        action_id: str,
        value: str,
        *,
        user: str = FINANCE_USER,
        message_ts: str = "",
        ephemeral: bool = False,
        **options: Any,
    ) -> Reply:
        """Click a button; an `ephemeral` message's payload carries no `message`."""
        container: dict[str, Any] = {"type": "message", "message_ts": message_ts}
        payload: dict[str, Any] = {
            "type": "block_actions",
            "team": {"id": "T0STANDIN"},
            "user": {"id": user},
            "api_app_id": "A0APP",
            "channel": {"id": CHANNEL},
            "container": container,
            "trigger_id": f"trigger-{time.monotonic_ns()}",
            "response_url": self.slack.response_url("action"),
            "actions": [
                {
                    "type": "button",
                    "action_id": action_id,
                    "block_id": "b",
                    "value": value,
                    "action_ts": str(time.time()),
                }
            ],
        }
        if ephemeral:
            container.update(channel_id=CHANNEL, is_ephemeral=True)
        else:
            payload["message"] = {"ts": message_ts}
        return self.interaction(payload, **options)

    def submit_view(
        self,
        callback_id: str,
        values: dict[str, Any],
        *,
        user: str = FINANCE_USER,
        private_metadata: str = "",
    ) -> Reply:
        payload = {
            "type": "view_submission",
            "team": {"id": "T0STANDIN"},
            "user": {"id": user},
            "api_app_id": "A0APP",
            "view": {
                "id": "V0VIEW",
                "type": "modal",
                "callback_id": callback_id,
                "private_metadata": private_metadata,
                "state": {"values": values},
            },
        }
        return self.interaction(payload)

    def event(self, event: dict[str, Any], **options: Any) -> Reply:
        body = json.dumps(
            {
                "type": "event_callback",
                "team_id": "T0STANDIN",
                "api_app_id": "A0APP",
                "event_id": f"Ev{time.monotonic_ns()}",
                "event_time": int(time.time()),
                "event": event,
            }
        ).encode()
        return self.post(body, content_type="application/json", **options)

    def new_run(self, period: str, start: date, end: date, **options: Any) -> Reply:
        values = {
            "period": {
                "value": {
                    "type": "static_select",
                    "selected_option": {"value": period},
                }
            },
            "planned_start": {
                "value": {"type": "datepicker", "selected_date": start.isoformat()}
            },
            "planned_end": {
                "value": {"type": "datepicker", "selected_date": end.isoformat()}
            },
        }
        return self.submit_view("new_run", values, **options)

    def job_count(self) -> int:
        with self.factory() as session:
            return len(list(session.scalars(select(Job.id))))

    def wait_for_jobs(self, count: int, timeout: float = 60.0) -> None:
        """Wait until `count` jobs were queued in all and the worker finished them."""

        def finished() -> bool:
            return (
                self.job_count() >= count and jobs.unfinished_count(self.factory) == 0
            )

        wait_for(finished, timeout=timeout)


def month_message(app: SlackApp) -> Message:
    [message] = app.slack.top_level(CHANNEL)
    return message


def buttons(blocks: list[dict[str, Any]], action_id: str) -> list[dict[str, Any]]:
    return [
        element
        for block in blocks
        if block["type"] == "actions"
        for element in block["elements"]
        if element["action_id"] == action_id
    ]


def generate_month(
    app: SlackApp, *, jobs_before: int = 0, wait: bool = True
) -> Message:
    """Create the month in the modal, click Generate and wait for the thread."""
    app.new_run(PERIOD, date(2026, 12, 1), date(2026, 12, 10))
    wait_for(lambda: len(app.slack.top_level(CHANNEL)) == 1)
    message = month_message(app)
    [generate] = buttons(message.blocks, "run_generate")
    app.click("run_generate", generate["value"], message_ts=message.ts)
    if wait:
        app.wait_for_jobs(jobs_before + 1)
    return month_message(app)


def click_send_all(
    app: SlackApp, *, user: str = FINANCE_USER, value: str = "", **options: Any
) -> Reply:
    """Click Send all; a `value` taken earlier clicks a message no longer current."""
    message = month_message(app)
    if not value:
        [send_all] = buttons(message.blocks, "run_send_all")
        value = send_all["value"]
    return app.click("run_send_all", value, user=user, message_ts=message.ts, **options)


def wait_for(check: Callable[[], bool], *, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {check}")


def add_clients(
    factory: sessionmaker[Session],
    count: int,
    *,
    long_names: bool = False,
    without_email: frozenset[int] = frozenset(),
    excluded: bool = False,
    first: int = 0,
    period_start: date = date(2026, 11, 1),
) -> list[str]:
    """Add `count` clients, each with one posted invoice in the period."""
    codes = []
    with transaction(factory) as session:
        for index in range(first, first + count):
            code = f"K{index:04d}"
            name = f"UAB „Klientas {index}“"
            if long_names and index % 2 == 0:
                long_part = "Labai ilgas pavadinimas " * 4
                name = f"Uždaroji akcinė bendrovė „{long_part}{index}“"
            emails = () if index in without_email else (f"k{index}@example.com",)
            client = factories.add_client(
                session,
                code,
                name,
                emails=emails,
                excluded=excluded,
                reason="paid in advance" if excluded else "",
            )
            factories.add_document(
                session,
                client,
                f"SF-{index:05d}",
                period_start.replace(day=1 + index % 27),
                "100.00",
                "21.00",
                kind=DocumentType.INVOICE,
            )
            codes.append(code)
    return codes


def slack_settings(
    database_url: str, slack: SlackStandin, mail: sendgrid.SendGridStandin, tmp: Path
) -> Settings:
    return Settings(
        database_url=database_url,
        company_name=factories.COMPANY.name,
        company_code=factories.COMPANY.code,
        company_vat_code=factories.COMPANY.vat_code,
        company_address=factories.COMPANY.address,
        mail_from=sendgrid.VERIFIED_SENDER,
        mail_from_name="Buhalterija",
        sendgrid_api_key=sendgrid.API_KEY,
        sendgrid_api_host=mail.url,
        sendgrid_timeout_seconds=5.0,
        outbox_dir=tmp / "outbox",
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=slack.base_url,
        slack_channel=CHANNEL,
        finance_users=f"{FINANCE_USER},{SECOND_FINANCE_USER}",
        finance_usergroup=FINANCE_GROUP,
    )


@pytest.fixture
def slack_standin() -> Iterator[SlackStandin]:
    standin = SlackStandin().start()
    standin.usergroups[FINANCE_GROUP] = [GROUP_USER]
    yield standin
    standin.stop()


@pytest.fixture
def sendgrid_standin() -> Iterator[sendgrid.SendGridStandin]:
    standin = sendgrid.SendGridStandin()
    standin.start()
    yield standin
    standin.stop()


@pytest.fixture
def slack_context(
    database_url: str,
    slack_standin: SlackStandin,
    sendgrid_standin: sendgrid.SendGridStandin,
    tmp_path: Path,
) -> Iterator[AppContext]:
    settings = slack_settings(database_url, slack_standin, sendgrid_standin, tmp_path)
    context = build_context(settings)
    yield context
    context.engine.dispose()


@pytest.fixture
def slack_app(
    slack_context: AppContext,
    slack_standin: SlackStandin,
    sendgrid_standin: sendgrid.SendGridStandin,
) -> Iterator[SlackApp]:
    """The app serving HTTP on 127.0.0.1 with a job worker thread beside it."""
    client = make_web_client(slack_context.settings)
    worker = start_worker_thread(
        slack_context, client, lease_seconds=3.0, poll_seconds=0.2
    )
    app = create_app(slack_context, client=client, wake_worker=worker.wake)
    server = make_http_server(WebApp(slack_context, app), 0, host="127.0.0.1")
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"

    yield SlackApp(url, slack_context, slack_standin, sendgrid_standin, worker)

    worker.stop()
    server.shutdown()
    server.server_close()
