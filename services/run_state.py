"""Find a monthly task, list its client tasks and keep its state up to date."""

from __future__ import annotations

import logging

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.errors import NotFoundError
from services.models import FINAL_STATES, Client, ClientTask, Run, RunState, utcnow
from services.periods import Period
from services.views import TaskView, task_view

logger = logging.getLogger(__name__)


def get_run(session: Session, period: Period) -> Run:
    run = session.scalar(select(Run).where(Run.period == str(period)))
    if run is None:
        raise NotFoundError(
            f"there is no monthly task for {period}; create it with "
            f"`invoices run create {period} --start YYYY-MM-DD --end YYYY-MM-DD`"
        )
    return run


def refresh_run_state(session: Session, run: Run) -> None:
    """Mark a generated monthly task complete when every client task is finished.

    Excluded clients have no task, so they never hold a month open. A month
    that gets new unfinished tasks after completion goes back to generated.
    """
    if run.state is RunState.PLANNED:
        return
    session.flush()
    unfinished = session.scalar(
        select(func.count(ClientTask.id)).where(
            ClientTask.run_id == run.id, ClientTask.state.not_in(FINAL_STATES)
        )
    )
    if unfinished == 0 and run.state is not RunState.COMPLETE:
        run.state = RunState.COMPLETE
        run.completed_at = utcnow()
        logger.info("The monthly task for %s is complete", run.period)
    elif unfinished and run.state is RunState.COMPLETE:
        run.state = RunState.GENERATED
        run.completed_at = None


def _task_views(session: Session, run: Run) -> list[TaskView]:
    rows = session.execute(
        select(ClientTask, Client.code, Client.name)
        .join(Client, Client.id == ClientTask.client_id)
        .where(ClientTask.run_id == run.id)
        .order_by(Client.code)
    )
    return [task_view(task, run.period, code, name) for task, code, name in rows]
