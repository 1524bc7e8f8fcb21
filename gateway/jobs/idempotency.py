"""`POST /programs/run` with an `Idempotency-Key`: one job per key and user within 24 hours.

A client that retries a run whose answer it lost (a timeout, a gateway that died, a load balancer
that gave up) sends the same key and gets the job the first request made, never a second one.
The key's row commits with the job's row, and its primary key (user, key) settles a race between
two gateways: the loser's transaction rolls back and it answers with the winner's job.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.orm import Session

from gateway import db
from gateway.errors import ApiError
from gateway.jobs.schemas import JobCreated, RunRequest

KEPT = timedelta(hours=24)
REUSED = "This Idempotency-Key was used for another run request within 24 hours."


@dataclass(frozen=True)
class Claim:
    author: str
    key: str
    fingerprint: str

    @classmethod
    def of(cls, author: str, key: str, request: RunRequest) -> Claim:
        return cls(author, key, hashlib.sha256(request.model_dump_json().encode()).hexdigest())

    def take(self, session: Session, job_id: str) -> None:
        """Tie the key to the job in the job's own transaction (a key past its 24 h is replaced).
        Done last before the commit: on SQLite a write holds the database until then."""
        session.execute(delete(db.Submission).where(*self.mine(), db.Submission.created < db.utcnow() - KEPT))
        session.add(db.Submission(author=self.author, key=self.key, fingerprint=self.fingerprint, job_id=job_id))

    def mine(self) -> tuple[ColumnElement[bool], ...]:
        return (db.Submission.author == self.author, db.Submission.key == self.key)


def earlier_job(session: Session, claim: Claim, arguments: str) -> JobCreated | None:
    """The job this key made within 24 h, answered as its run was (409 for another request's key)."""
    recent = db.Submission.created >= db.utcnow() - KEPT
    found = session.scalars(select(db.Submission).where(*claim.mine(), recent)).first()
    if found is None:
        return None
    if found.fingerprint != claim.fingerprint:
        raise ApiError(409, REUSED)
    job = session.get(db.Job, found.job_id)
    assert job is not None  # a foreign key
    return JobCreated(
        id=job.id, status=job.status, program=job.program_id, created=db.iso(job.created), arguments=arguments
    )


def forget_expired(session: Session) -> int:
    """Drop the keys past their 24 h (the maintenance flow's); how many."""
    done = session.execute(delete(db.Submission).where(db.Submission.created < db.utcnow() - KEPT))
    return int(getattr(done, "rowcount", 0) or 0)
