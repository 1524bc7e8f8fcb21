"""The dispatcher: recorded jobs become flow runs at the rate Prefect and the executor take them.

`POST /programs/run` only records a job (gateway/jobs/submit.py). Each gateway runs a dispatcher
thread that turns recorded jobs into flow runs while fewer than `dispatch_window` runs of the pool
are due or under way: beyond that, jobs wait QUEUED in the store, each user's in order, users
taking turns. A flow run is created with the job's id as its idempotency key, so two gateways
dispatching the same job, or a dispatcher that died between creating a run and recording it, never
make a second run: the job's next dispatch (any gateway, any restart) gets the first run back.
"""

from __future__ import annotations

import json
import logging

import httpx
from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from core import layout
from core.status import FAILED, QUEUED
from gateway import db
from gateway.context import Services
from gateway.jobs.status_feed import link_run
from gateway.orchestrator import Retries
from gateway.periodic import Periodic

log = logging.getLogger("qiskit_serverless.dispatch")

DISPATCH_EVERY_SECONDS = 1.0  # the pace when nothing wakes it (runs ending free the window)
BATCH = 16
MAX_ATTEMPTS = 5
# Failed dispatches in a row, by job: this process's count (another gateway counts its own), kept
# by its one dispatcher thread.
_attempts: dict[str, int] = {}


def dispatch_jobs(services: Services) -> int:
    """Make flow runs of waiting jobs, users taking turns, while the window has room; returns how many.

    A job whose dispatch fails does not hold the others: they go on, and it is tried again on the
    next pass; a job Prefect refuses for good, or that fails MAX_ATTEMPTS passes in a row, fails.
    """
    window = services.settings.dispatch_window
    made = 0
    while window:
        room = window - services.orchestrator.runs_in_flight()
        if room <= 0:
            break
        with services.database.session() as session:
            waiting = session.execute(_next_jobs(min(room, BATCH))).all()
            if not waiting:
                break
            session.commit()  # no read transaction held across Prefect calls (SQLite would refuse the write after)
            failed = 0
            for job, program in waiting:
                try:
                    made += _dispatch(services, session, job, program)
                    _attempts.pop(job.id, None)
                except Exception:
                    session.rollback()
                    failed += 1
                    _retry_or_fail(services, session, job)
            if failed:
                break  # the failed ones come first again: the next pass, not a busy loop
    return made


def _retry_or_fail(services: Services, session: Session, job: db.Job) -> None:
    _attempts[job.id] = tries = _attempts.get(job.id, 0) + 1
    log.exception("dispatching job %s failed (attempt %d of %d)", job.id, tries, MAX_ATTEMPTS)
    if tries >= MAX_ATTEMPTS:
        _attempts.pop(job.id, None)
        _fail(services, session, job, "The job could not be started: the orchestrator did not take its run.")


def _next_jobs(count: int) -> Select[db.Job, db.Program]:
    """The recorded jobs to dispatch next: each user's in the order they came, users taking turns
    (every user's first waiting job, then every user's second, …), so one user's backlog never
    holds another's job behind it."""
    turns = (
        select(
            db.Job.id,
            func.row_number().over(partition_by=db.Job.author, order_by=(db.Job.created, db.Job.id)).label("turn"),
        )
        .where(db.Job.dispatched.is_(False), db.Job.status == QUEUED)
        .subquery()
    )
    return (
        select(db.Job, db.Program)
        .join(turns, turns.c.id == db.Job.id)
        .join(db.Program, db.Job.program_id == db.Program.id)
        .order_by(turns.c.turn, db.Job.created, db.Job.id)
        .limit(count)
    )


def _dispatch(services: Services, session: Session, job: db.Job, program: db.Program) -> bool:
    assert program.deployment_id is not None  # recorded only for programs with a deployment
    area = layout.job_area(job.author, program.provider, program.title)
    raw = services.storage.get_bytes(layout.arguments_file(area, job.id))
    try:
        arguments = json.loads(raw) if raw else {}
    except ValueError:  # rewritten since it was recorded (a user's own area holds it)
        _fail(services, session, job, "The job could not be started: its arguments file is not JSON any more.")
        return False
    try:
        run_id = services.orchestrator.start_run(
            job_id=job.id,
            deployment_id=program.deployment_id,
            arguments=arguments if isinstance(arguments, dict) else {},
            runner=job.author,
            title=program.title,
            provider=program.provider,
            retries=Retries(job.retries, job.retry_delay_seconds),
        )
    except httpx.HTTPStatusError as refused:
        if refused.response.status_code >= 500 or refused.response.status_code in (408, 429):
            raise  # Prefect busy or down: tried again
        # Prefect refuses this run for good (e.g. arguments the program's schema, replaced since, rejects).
        _fail(services, session, job, f"The job could not be started: {refused.response.text[:500]}")
        return False
    link_run(services, session, job.id, run_id)
    return True


def _fail(services: Services, session: Session, job: db.Job, message: str) -> None:
    log.warning("job %s failed before it started: %s", job.id, message)
    failed = session.execute(
        update(db.Job)
        .where(db.Job.id == job.id, db.Job.dispatched.is_(False), db.Job.status == QUEUED)  # not over a stop
        .values(status=FAILED, status_at=db.utcnow())
    )
    if failed.rowcount:  # type: ignore[attr-defined]
        data = json.dumps({"message": message})
        session.add(db.JobEvent(job_id=job.id, event_type="ERROR", origin="SCHEDULER", context="DISPATCH", data=data))
    session.commit()
    services.reads.forget_job(job.id)


class Dispatcher(Periodic):
    """The gateway's dispatcher thread: woken by each recorded job and each run's end, and every
    DISPATCH_EVERY_SECONDS at the latest."""

    name = "dispatcher"
    every = DISPATCH_EVERY_SECONDS

    def work(self) -> None:
        dispatch_jobs(self.services)
