"""Put finished jobs of one user's function straight into a stack's store (for the listing benchmark).

    .venv/bin/python bench/seed_jobs.py USER TITLE COUNT      (with the stack's QS_* environment)

Rows only: their runs are not in Prefect, which lists never ask (statuses are the store's).
"""

from __future__ import annotations

import hashlib
import sys
import uuid
from datetime import timedelta

from sqlalchemy import insert, select

from core.settings import Settings
from gateway import db


def main(user: str, title: str, count: int) -> None:
    database = db.Database(Settings().db_url)
    with database.session() as session:
        program = session.scalar(select(db.Program).where(db.Program.author == user, db.Program.title == title))
        assert program is not None, f"no function {title} of {user}"
        start = db.utcnow() - timedelta(days=1)
        rows = [
            {
                "id": str(uuid.uuid4()),
                "author": user,
                "program_id": program.id,
                "flow_run_id": str(uuid.uuid4()),
                "token_hash": hashlib.sha256(uuid.uuid4().bytes).hexdigest(),
                "created": start + timedelta(seconds=index),
                "dispatched": True,
                "status": "SUCCEEDED" if index % 4 else "FAILED",
                "status_at": start + timedelta(seconds=index + 1),
            }
            for index in range(count)
        ]
        session.execute(insert(db.Job), rows)
        session.commit()
    database.dispose()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
