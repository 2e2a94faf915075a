"""The `invoices` command."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import date, datetime
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.exc import OperationalError

from bot.console import UserError, configure_logging, progress_bar, stderr, stdout
from bot.context import AppContext, build_context
from bot.settings import load_settings
from services import runs
from services.audit import cli_actor
from services.errors import InvoiceListsError
from services.periods import Period, parse_date

F = TypeVar("F", bound=Callable[..., Any])

logger = logging.getLogger(__name__)


def reports_errors(command: F) -> F:
    """Turn the product's errors into one clear line and a non-zero exit."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except InvoiceListsError as error:
            raise UserError(str(error)) from error
        except OSError as error:
            where = f": {error.filename}" if error.filename else ""
            raise UserError(f"{error.strerror or error}{where}") from error
        except OperationalError as error:
            logger.debug("Database error", exc_info=True)
            raise UserError(
                "could not use the database named by DATABASE_URL: "
                f"{error.orig or error}".strip()
            ) from error

    return wrapper  # type: ignore[return-value]


@contextmanager
def app_context(*, check: bool = True) -> Iterator[AppContext]:
    context = build_context(load_settings(), check=check)
    try:
        yield context
    finally:
        context.engine.dispose()


class MonthType(click.ParamType[Period, Any]):
    name = "YYYY-MM"

    def convert(self, value: Any, param: Any, ctx: Any) -> Period:
        if isinstance(value, Period):
            return value
        try:
            return Period.parse(str(value))
        except InvoiceListsError as error:
            self.fail(str(error), param, ctx)


class DateType(click.ParamType[date, Any]):
    name = "YYYY-MM-DD"

    def convert(self, value: Any, param: Any, ctx: Any) -> date:
        if isinstance(value, date):
            return value
        try:
            return parse_date(str(value))
        except InvoiceListsError as error:
            self.fail(str(error), param, ctx)


MONTH = MonthType()
DATE = DateType()
EXISTING_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="invoice-lists")
@click.option("-v", "--verbose", is_flag=True, help="Log every business event.")
def main(verbose: bool) -> None:
    """Send each client the monthly list of its sales documents."""
    configure_logging(verbose)


@main.group()
def db() -> None:
    """Manage the database schema."""


@db.command("upgrade")
@reports_errors
def db_upgrade() -> None:
    """Create the schema or migrate it to this version."""
    from services.db import current_revision, upgrade

    with app_context(check=False) as context:
        before = current_revision(context.engine)
        upgrade(context.engine)
        after = current_revision(context.engine)
        url = context.engine.url.render_as_string(hide_password=True)
    if before is None:
        stdout.print(f"Created the schema (revision {after}) in the database at {url}.")
    elif before != after:
        stdout.print(
            f"Migrated the database at {url} from revision {before} to {after}."
        )
    else:
        stdout.print(f"The database at {url} is up to date (revision {after}).")


@main.group("import")
def import_group() -> None:
    """Import clients and sales documents."""


@import_group.command("isaf")
@click.argument("files", nargs=-1, required=True, type=EXISTING_FILE)
@reports_errors
def import_isaf_command(files: tuple[Path, ...]) -> None:
    """Import sales invoices from i.SAF 1.2 XML files."""
    from services.imports import import_isaf

    with app_context() as context, progress_bar("Importing") as progress:
        report = import_isaf(
            context.factory, list(files), actor=cli_actor(), progress=progress
        )
    stdout.print(report.summary_line())


@import_group.command("clients")
@click.argument("file", type=EXISTING_FILE)
@reports_errors
def import_clients_command(file: Path) -> None:
    """Import the clients CSV (code,name,email,language,address,exclude)."""
    from services.imports import import_clients_csv

    with app_context() as context:
        report = import_clients_csv(context.factory, file, actor=cli_actor())
    stdout.print(report.summary_line())


@import_group.command("documents")
@click.argument("file", type=EXISTING_FILE)
@reports_errors
def import_documents_command(file: Path) -> None:
    """Import sales documents from a documents CSV."""
    from services.imports import import_documents_csv

    with app_context() as context, progress_bar("Importing") as progress:
        report = import_documents_csv(
            context.factory,
            file,
            zone=context.settings.zone,
            actor=cli_actor(),
            progress=progress,
        )
    stdout.print(report.summary_line())


@main.group("run")
def run_group() -> None:
    """Create, generate and send monthly tasks."""


@run_group.command("create")
@click.argument("month", type=MONTH)
@click.option("--start", "start", type=DATE, required=True, help="Planned start.")
@click.option("--end", "end", type=DATE, required=True, help="Planned end.")
@reports_errors
def run_create(month: Period, start: date, end: date) -> None:
    """Create the monthly task for MONTH with its planned sending dates."""
    with app_context() as context:
        view = runs.create_run(
            context.factory,
            month,
            planned_start=start,
            planned_end=end,
            actor=cli_actor(),
        )
    stdout.print(
        f"Created the monthly task for {view.period}, planned from "
        f"{view.planned_start} to {view.planned_end}."
    )


@run_group.command("generate")
@click.argument("month", type=MONTH)
@reports_errors
def run_generate(month: Period) -> None:
    """Create client tasks with letters and PDFs for MONTH.

    Clients with posted documents in MONTH and no task get one. Tasks marked
    stale because their documents changed are rebuilt, and the others stay as
    they are. MONTH must have ended. Next month's monthly task is created too.
    """
    with app_context() as context, progress_bar("Generating") as progress:
        report = runs.generate_run(
            context.factory,
            month,
            company=context.company,
            actor=cli_actor(),
            sender_name=context.settings.mail_from_name,
            progress=progress,
            today=_today(context),
        )
    stdout.print(report.summary_line())
    for code, reason in report.failed:
        stderr.print(f"Client {code} was not generated: {reason}")


@run_group.command("send")
@click.argument("month", type=MONTH)
@click.option(
    "--client", "client_code", help="Send only this client's task (code or name)."
)
@click.option(
    "--force",
    is_flag=True,
    help="Send a task whose earlier send has an unknown outcome (with --client).",
)
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Also send the month's tasks that failed earlier.",
)
@reports_errors
def run_send(
    month: Period, client_code: str | None, force: bool, retry_failed: bool
) -> None:
    """Send every ready client task of MONTH, or one client's task."""
    from services.mail import make_backend, sender_from_settings
    from services.sending import SendResult, send_run

    if force and not client_code:
        raise UserError("--force applies to one client only; add --client CODE")
    with app_context() as context:
        if client_code:
            client_code = _client_code(context, client_code)
        sender = sender_from_settings(context.settings)
        backend = make_backend(context.settings, pooled=True)
        with closing(backend), progress_bar("Sending") as progress:
            report = send_run(
                context.factory,
                month,
                backend=backend,
                sender=sender,
                actor=cli_actor(),
                client_code=client_code,
                force=force,
                retry_failed=retry_failed,
                progress=progress,
                max_attempts=context.settings.sendgrid_max_attempts,
            )
    stdout.print(report.summary_line())
    for outcome in report.outcomes:
        if outcome.result in {SendResult.FAILED, SendResult.UNKNOWN}:
            stderr.print(f"{outcome.client_code}: {outcome.reason}", markup=False)
    if report.stop_reason:
        stderr.print(f"Sending stopped: {report.stop_reason}", markup=False)
        stderr.print(
            f"Not sent: {_tasks(report.stopped)}, all still ready; fix the setting "
            f"and run `invoices run send {month}` again."
        )
    if report.being_sent:
        stderr.print(
            f"{_tasks(report.being_sent).capitalize()} still `sending` from another "
            "run, or from one that was stopped; they turn unknown 15 minutes after "
            f"their send started unless that run records them (`invoices status "
            f"{month}`)."
        )
    if report.failed_earlier:
        stderr.print(
            f"{_tasks(report.failed_earlier).capitalize()} failed earlier and were "
            f"not sent again; use `invoices run send {month} --retry-failed` or "
            "`--client CODE`."
        )
    if report.failed or report.unknown or report.stop_reason:
        raise SystemExit(1)


def _tasks(count: int) -> str:
    return f"{count} task" if count == 1 else f"{count} tasks"


@run_group.command("skip")
@click.argument("month", type=MONTH)
@click.option(
    "--client", "client_code", required=True, help="The client's code or name."
)
@click.option("--reason", default="", help="Why the client is skipped this month.")
@reports_errors
def run_skip(month: Period, client_code: str, reason: str) -> None:
    """Skip one client's task so it is not sent for MONTH."""
    with app_context() as context:
        code = _client_code(context, client_code)
        view = runs.skip_task(
            context.factory, month, code, actor=cli_actor(), reason=reason
        )
    stdout.print(f"Skipped client {view.client_code} for {month}: {view.skip_reason}")


@main.group("client")
def client_group() -> None:
    """Change a client's e-mail addresses or exclusion."""


@client_group.command("email")
@click.argument("code")
@click.argument("addresses")
@reports_errors
def client_email(code: str, addresses: str) -> None:
    """Set CODE's statement addresses; separate several with `;`."""
    from services.clients import set_client_emails

    with app_context() as context:
        client = set_client_emails(context.factory, code, addresses, actor=cli_actor())
        emails = ", ".join(client.email_addresses) or "none"
    stdout.print(f"Client {client.code} now receives statements at: {emails}")


@client_group.command("exclude")
@click.argument("code")
@click.option("--reason", required=True, help="Why the client gets no statements.")
@reports_errors
def client_exclude(code: str, reason: str) -> None:
    """Exclude a client: no client task is created for it."""
    from services.clients import exclude_client

    if not reason.strip():
        raise UserError("--reason is empty; say why the client gets no statements")
    with app_context() as context:
        exclude_client(context.factory, code, reason=reason, actor=cli_actor())
    stdout.print(f"Client {code} is excluded: {reason}")


@client_group.command("include")
@click.argument("code")
@reports_errors
def client_include(code: str) -> None:
    """Include a client that was excluded."""
    from services.clients import include_client

    with app_context() as context:
        include_client(context.factory, code, actor=cli_actor())
    stdout.print(f"Client {code} is included again.")


@main.command("status")
@click.argument("month", type=MONTH, required=False)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@reports_errors
def status(month: Period | None, as_json: bool) -> None:
    """Show a month's client tasks, exclusions and recent actions."""
    from bot.status import print_status

    with app_context() as context:
        period = month or runs.current_period(context.factory)
        result = runs.run_status(context.factory, period)
    if as_json:
        click.echo(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
    else:
        print_status(result)


@main.command("preview")
@click.argument("month", type=MONTH)
@click.argument("client")
@click.option(
    "--output",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Where to write the PDF.",
)
@reports_errors
def preview(month: Period, client: str, output: Path) -> None:
    """Write CLIENT's statement PDF for MONTH to a file."""
    with app_context() as context:
        code = _client_code(context, client)
        _name, pdf = runs.task_pdf(context.factory, month, code)
    output.write_bytes(pdf)
    stdout.print(f"Wrote the statement of client {code} for {month} to {output}.")


@main.command("demo")
@click.option(
    "--directory",
    default=Path("demo-output"),
    type=click.Path(file_okay=False, path_type=Path),
    show_default=True,
    help="Where the demo database, PDFs and e-mails go.",
)
@reports_errors
def demo(directory: Path) -> None:
    """Run a whole month on bundled example data, into SQLite and the outbox."""
    from bot.demo import run_demo

    run_demo(directory)


@main.group("slack")
def slack_group() -> None:
    """Run the Slack app."""


@slack_group.command("serve")
@click.option("--port", default=3000, show_default=True, help="TCP port to listen on.")
@reports_errors
def slack_serve(port: int) -> None:
    """Serve the Slack app over HTTP (POST /slack/events, GET /healthz)."""
    from bot.web import serve_http

    with app_context() as context:
        serve_http(context, port)


@slack_group.command("socket")
@reports_errors
def slack_socket() -> None:
    """Connect the Slack app over Socket Mode (needs SLACK_APP_TOKEN)."""
    from bot.slack_app import serve_socket

    with app_context() as context:
        serve_socket(context)


@main.command("worker")
@reports_errors
def worker() -> None:
    """Carry out queued long work: generation, uploads and sending."""
    from bot.worker import run_worker

    with app_context() as context:
        run_worker(context)


@main.command("scheduler")
@reports_errors
def scheduler() -> None:
    """Post each month's task on schedule and remind about late work."""
    from bot.scheduler import run_scheduler

    with app_context() as context:
        run_scheduler(context)


def _client_code(context: AppContext, query: str) -> str:
    """Find a client by its code or part of its name and return its code."""
    from services.clients import find_client

    with context.factory() as session:
        return find_client(session, query).code


def _today(context: AppContext) -> date:
    return datetime.now(context.settings.zone).date()
