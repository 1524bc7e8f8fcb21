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
from gateway.periodic import Periodic

log = logging.getLogger("qiskit_serverless.status")

RECONCILE_SECONDS = 5.0


def link_run(services: Services, session: Session, job_id: str, run_id: str) -> None:
    """Record that this run carries out the job, once, whoever sees it first (the dispatcher that
    made it, the run's first event, or adoption after a dispatcher died before recording it). A
    job stopped while its run was being made gets its run stopped here."""
    linked = _link(session, job_id, run_id)
    session.commit()
    if linked:
        _stop_if_stopped(services, session, job_id, run_id)


def _link(session: Session, job_id: str, run_id: str) -> bool:
    """The link, in the caller's transaction; True when this call made it."""
    linked = session.execute(
        update(db.Job)
        .where(db.Job.id == job_id, db.Job.dispatched.is_(False))
        .values(flow_run_id=run_id, dispatched=True)
    )
    return bool(linked.rowcount)  # type: ignore[attr-defined]


def _stop_if_stopped(services: Services, session: Session, job_id: str, run_id: str) -> None:
    if session.scalar(select(db.Job.status).where(db.Job.id == job_id)) == status.STOPPED:
        services.orchestrator.stop(run_id)


def record(services: Services, session: Session, change: RunState) -> None:
    """Take a run's new state into its job's row (matched by the run's job tag, else its id), and
    link the run to its job if nobody had (`link_run`), in one transaction.

    Only a newer state counts, and a finished job stays finished unless the run finishes again
    (a refused re-run from the Prefect UI passes through Scheduled; a job stopped before its run
    existed stays STOPPED while that run is stopped).
    """
    linked = change.job_id is not None and _link(session, change.job_id, change.flow_run_id)
    target = db.Job.id == change.job_id if change.job_id is not None else db.Job.flow_run_id == change.flow_run_id
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
    if linked and change.job_id is not None:
        _stop_if_stopped(services, session, change.job_id, change.flow_run_id)
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


class StatusFeed(Periodic):
    """The reconciliation, a pass every RECONCILE_SECONDS, and a second thread that follows
    Prefect's events."""

    name = "status-reconcile"
    every = RECONCILE_SECONDS

    def start(self) -> None:
        super().start()
        # It may sit in a read when the gateway stops: a daemon nobody waits for.
        threading.Thread(target=self._follow, name="status-events", daemon=True).start()

    def work(self) -> None:
        reconcile(self.services)

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
