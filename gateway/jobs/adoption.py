"""Runs started in Prefect become jobs.

A Quick or Custom run from the Prefect UI, `prefect deployment run`, a schedule or an automation
makes a flow run of a program's deployment that no request made. The gateway adopts each one, once
it is due, as a new job of the program's author: its own id (the flow run's), artifact snapshot,
callback token, arguments file (the run's `arguments` parameter), logs, result and files. The flow
waits for the job's spec before it starts the program (flows/run_program.py).

A run the dispatcher made carries its job's tag: it is that job's, never a new one.
"""

from __future__ import annotations

import json
import logging

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway import db
from gateway.access.facts import user_groups
from gateway.access.subject import Principal
from gateway.context import Services
from gateway.errors import ApiError
from gateway.jobs.status_feed import link_run
from gateway.jobs.submit import RunExtras, open_job, retries_of
from gateway.orchestrator import ProgramRun
from gateway.periodic import Periodic

log = logging.getLogger("qiskit_serverless.adoption")

ADOPT_EVERY_SECONDS = 1.0


def adopt_runs(services: Services) -> list[str]:
    """Make a job of every due run of the pool that is none yet; returns the new jobs' ids."""
    candidates = services.orchestrator.runs_to_adopt()
    if not candidates:
        return []
    adopted: list[str] = []
    with services.database.session() as session:
        ids = [run.flow_run_id for run in candidates]
        known = set(session.scalars(select(db.Job.flow_run_id).where(db.Job.flow_run_id.in_(ids))))
        for run in candidates:
            if run.flow_run_id not in known and _adopt(services, session, run):
                adopted.append(run.flow_run_id)
    return adopted


def _adopt(services: Services, session: Session, run: ProgramRun) -> bool:
    if run.job_id is not None and run.job_id != run.flow_run_id:
        # The dispatcher's run of a recorded job that no one has linked yet (its dispatcher died
        # between making it and recording it, and its events were missed): its job's, never a new one.
        link_run(services, session, run.job_id, run.flow_run_id)
        return False
    program = session.scalar(select(db.Program).where(db.Program.deployment_id == run.deployment_id))
    if program is None or program.artifact is None or program.entrypoint is None:
        return False  # not a runnable program of this gateway: the flow ends it, finding no job
    name = run.runner or program.author
    if session.get(db.User, name) is None:
        return False
    runner = Principal(name, user_groups(session, name))
    arguments = run.arguments if isinstance(run.arguments, dict) else {}
    # Before the job's spec, which the flow waits for: the run has its retries when the program starts.
    services.orchestrator.adopt_run(
        run, runner=name, title=program.title, provider=program.provider, retries=retries_of(program)
    )
    try:
        open_job(services, session, program, runner, run.flow_run_id, json.dumps(arguments), RunExtras())
    except IntegrityError:
        session.rollback()  # another gateway adopted it first
        return False
    except ApiError as refused:
        log.warning("flow run %s was not adopted: %s", run.flow_run_id, refused.message)
        return False
    log.info("flow run %s started in Prefect is now a job of %s", run.flow_run_id, name)
    return True


class Adopter(Periodic):
    """Adopts runs every ADOPT_EVERY_SECONDS in a thread of the gateway (each gateway does; the job's
    primary key makes a run a job once)."""

    name = "adopter"
    every = ADOPT_EVERY_SECONDS

    def work(self) -> None:
        adopt_runs(self.services)
