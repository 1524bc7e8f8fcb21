"""The jobs' statuses in the gateway's store, kept current from Prefect.

Reads and lists answer from the store (no Prefect round trip per request). The store follows
Prefect's event stream of flow-run states, and a reconciliation reads the states of every
unfinished job, a page per Prefect call, every RECONCILE_SECONDS (and at start), which catches what the stream
missed. A state is taken only if it is newer than the one the status came from, so events in
any order, and several gateways writing the same change, leave the newest.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from prefect.client.schemas.objects import State, StateType
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from core import status
from gateway import db
from gateway.context import Services
from gateway.orchestrator import STATES_PER_CALL, RunState

log = logging.getLogger("qiskit_serverless.status")

RECONCILE_SECONDS = 5.0


def link_run(services: Services, session: Session, job_id: str, run_id: str) -> None:
    """Record that this run carries out the job, once, whoever sees it first (the dispatcher that
    made it, the run's first event, or adoption after a dispatcher died before recording it). A
    job stopped while its run was being made gets its run stopped here."""
    linked = session.execute(
        update(db.Job)
        .where(db.Job.id == job_id, db.Job.dispatched.is_(False))
        .values(flow_run_id=run_id, dispatched=True)
    )
    session.commit()
    if linked.rowcount and session.scalar(select(db.Job.status).where(db.Job.id == job_id)) == status.STOPPED:  # type: ignore[attr-defined]
        services.orchestrator.stop(run_id)


def record(services: Services, session: Session, change: RunState) -> None:
    """Take a run's new state into its job's row (matched by the run's job tag, else its id).

    Only a newer state counts, and a finished job stays finished unless the run finishes again
    (a refused re-run from the Prefect UI passes through Scheduled; a job stopped before its run
    existed stays STOPPED while that run is stopped).
    """
    if change.job_id is not None:
        link_run(services, session, change.job_id, change.flow_run_id)
        target = db.Job.id == change.job_id
    else:
        target = db.Job.flow_run_id == change.flow_run_id
    moment = change.timestamp.astimezone(UTC)
    new = status.job_status(change.type)
    rules = [target, or_(db.Job.status_at.is_(None), db.Job.status_at <= moment)]
    if new not in status.TERMINAL:
        rules.append(db.Job.status.not_in(status.TERMINAL))
    session.execute(
        update(db.Job)
        .where(*rules)
        .values(status=new, status_at=moment)
        .execution_options(synchronize_session=False)  # callers refresh what they hold
    )
    session.commit()
    services.reads.forget_job(change.job_id, change.flow_run_id)


def record_state(services: Services, session: Session, job: db.Job, state: State | None) -> str:
    """Take a state just read from Prefect for this job; returns the job's status."""
    if state is not None and job.run_id is not None:
        record(services, session, RunState(job.run_id, job.id, state.type, state.timestamp or datetime.now(UTC)))
        session.refresh(job)
    return job.status


def reconcile(services: Services) -> int:
    """Bring every unfinished dispatched job's status up to its run's state; returns how many pages."""
    pages = 0
    after = ""
    while True:
        with services.database.session() as session:
            jobs = session.execute(
                select(db.Job.id, db.Job.flow_run_id)
                .where(db.Job.dispatched.is_(True), db.Job.status.not_in(status.TERMINAL), db.Job.id > after)
                .order_by(db.Job.id)
                .limit(STATES_PER_CALL)
            ).all()
            if not jobs:
                return pages
            pages += 1
            states = services.orchestrator.states(run_id for _, run_id in jobs)
            for job_id, run_id in jobs:
                state = states.get(run_id)
                if state is None:  # the run was deleted in Prefect: nothing will ever run this job
                    state = State(type=StateType.FAILED, timestamp=datetime.now(UTC))
                record(services, session, RunState(run_id, job_id, state.type, state.timestamp or datetime.now(UTC)))
            after = jobs[-1][0]


class StatusFeed:
    """Two threads of the gateway: one follows Prefect's events, one reconciles."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.stopping = threading.Event()
        self.threads = [
            threading.Thread(target=self._follow, name="status-events", daemon=True),
            threading.Thread(target=self._reconcile, name="status-reconcile", daemon=True),
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.threads[1].join(timeout=10)  # the event thread may sit in a read: it is a daemon

    def take(self, change: RunState) -> None:
        """Record one new state (what the event thread does with each)."""
        try:
            with self.services.database.session() as session:
                record(self.services, session, change)
        except Exception:
            log.exception("could not record the state of flow run %s", change.flow_run_id)
        if status.job_status(change.type) in status.TERMINAL:
            self.services.wake_dispatcher()  # the window has room again

    def _follow(self) -> None:
        self.services.orchestrator.follow_states(self.take, self.stopping)

    def _reconcile(self) -> None:
        while not self.stopping.is_set():
            try:
                reconcile(self.services)
            except Exception:
                log.exception("reconciling job statuses with Prefect failed")
            self.stopping.wait(RECONCILE_SECONDS)
