"""`invoices demo`: one whole month on bundled example data, with no credentials."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import services
from bot.console import progress_bar, stdout, task_table
from bot.context import build_context
from bot.settings import load_settings
from services import runs
from services.db import upgrade
from services.periods import Period

SAMPLE_DATA = Path(services.__file__).resolve().parent / "sample_data"
DEMO_PERIOD = Period(2026, 11)
DEMO_ACTOR = "demo"


def run_demo(directory: Path) -> None:
    """Import, generate and send the demo month into a fresh SQLite file and outbox.

    The demo always writes to the outbox, even when SENDGRID_API_KEY is set, so
    it can never e-mail anyone.
    """
    from services.imports import import_clients_csv, import_isaf
    from services.mail import make_backend, sender_from_settings
    from services.sending import send_run

    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    database = directory / "invoice-lists-demo.db"
    for path in (database, *directory.glob("invoice-lists-demo.db-*")):
        path.unlink(missing_ok=True)
    for folder in ("outbox", "pdfs"):
        shutil.rmtree(directory / folder, ignore_errors=True)

    settings = (
        load_settings()
        .with_demo_company()
        .model_copy(
            update={
                "database_url": f"sqlite:///{database.resolve()}",
                "outbox_dir": (directory / "outbox").resolve(),
                "sendgrid_api_key": "",
                "mail_from": "saskaitos@demo-imone.example",
                "mail_from_name": "Demonstracinės įmonės apskaita",
                "mail_reply_to": "apskaita@demo-imone.example",
            }
        )
    )
    context = build_context(settings, check=False)
    upgrade(context.engine)

    clients_file = SAMPLE_DATA / "demo-clients.csv"
    isaf_file = SAMPLE_DATA / "demo-isaf-2026-11.xml"
    stdout.print(
        import_clients_csv(
            context.factory, clients_file, actor=DEMO_ACTOR
        ).summary_line()
    )
    stdout.print(
        import_isaf(context.factory, [isaf_file], actor=DEMO_ACTOR).summary_line()
    )

    runs.create_run(
        context.factory,
        DEMO_PERIOD,
        planned_start=date(2026, 12, 3),
        planned_end=date(2026, 12, 10),
        actor=DEMO_ACTOR,
    )
    with progress_bar("Generating") as progress:
        generated = runs.generate_run(
            context.factory,
            DEMO_PERIOD,
            company=context.company,
            actor=DEMO_ACTOR,
            sender_name=settings.mail_from_name,
            progress=progress,
        )
    stdout.print(generated.summary_line())

    with progress_bar("Sending") as progress:
        sent = send_run(
            context.factory,
            DEMO_PERIOD,
            backend=make_backend(settings),
            sender=sender_from_settings(settings),
            actor=DEMO_ACTOR,
            progress=progress,
        )
    stdout.print(sent.summary_line())

    pdf_folder = directory / "pdfs"
    pdf_folder.mkdir()
    status = runs.run_status(context.factory, DEMO_PERIOD)
    for task in status.tasks:
        name, pdf = runs.task_pdf(context.factory, DEMO_PERIOD, task.client_code)
        (pdf_folder / name).write_bytes(pdf)
    context.engine.dispose()

    stdout.print(task_table(status.tasks))
    for client in status.excluded:
        stdout.print(
            f"Excluded: {client.client_code} {client.client_name}: {client.reason}"
        )
    stdout.print(f"Database:  {database}")
    stdout.print(f"PDFs:      {pdf_folder}")
    stdout.print(f"E-mails:   {settings.outbox_dir / str(DEMO_PERIOD)} (.eml files)")
    stdout.print(
        f"See the month with: DATABASE_URL={settings.database_url} invoices status "
        f"{DEMO_PERIOD}"
    )
