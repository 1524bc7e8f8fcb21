"""Which finished jobs have outlived the retention period, and the removal of their data.

The maintenance flow (gateway/maintenance.py) calls this. A job's row, status and events stay: its
list entry and status still answer, while its snapshot, spec, logs, arguments and result go.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import layout, status
from core.storage import Storage
from gateway import db
from gateway.jobs.service import data_area

BATCH = 200


@dataclass
class Removed:
    jobs: int = 0
    bytes: int = 0


def expired(session: Session, finished_before: datetime, limit: int = BATCH) -> list[tuple[db.Job, db.Program]]:
    """Finished jobs whose end is older than the cut-off and whose data is still kept, oldest first."""
    ended = func.coalesce(db.Job.status_at, db.Job.created)
    query = (
        select(db.Job, db.Program)
        .join(db.Program, db.Program.id == db.Job.program_id)
        .where(db.Job.status.in_(status.TERMINAL), ended < finished_before, db.Job.data_removed_at.is_(None))
        .order_by(ended)
        .limit(limit)
    )
    return [(job, program) for job, program in session.execute(query)]


def job_data(job: db.Job, program: db.Program) -> list[str]:
    """The keys that hold a job's own data (a data area's other files are the user's)."""
    area = data_area(job, program)
    return [layout.job_folder(job.id), layout.arguments_file(area, job.id), layout.results_file(area, job.id)]


def remove_expired(database: db.Database, storage: Storage, finished_before: datetime) -> Removed:
    """Remove the data of every job that ended before the cut-off, a batch per transaction."""
    removed = Removed()
    while True:
        with database.session() as session:
            batch = expired(session, finished_before)
            for job, program in batch:
                for key in job_data(job, program):
                    removed.bytes += storage.size(key)
                    storage.delete(key)
                job.data_removed_at = db.utcnow()
            session.commit()
        removed.jobs += len(batch)
        if len(batch) < BATCH:
            return removed
