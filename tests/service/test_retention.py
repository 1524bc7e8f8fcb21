"""The maintenance flow's removal of expired job data, on the real store and local storage."""

from __future__ import annotations

from datetime import timedelta

from gateway_harness import Gateway
from prefect.client.schemas.objects import StateType
from sqlalchemy import update

from core import layout
from core.job_log import DATA_REMOVED
from core.job_spec import JobSpec
from gateway import db
from gateway.jobs import retention

RUNNING, COMPLETED = StateType.RUNNING, StateType.COMPLETED


def finished_job(gateway: Gateway, ended_days_ago: float) -> str:
    if not gateway.call("GET", "/programs").json():
        assert gateway.upload().status_code == 200
    job_id = str(gateway.run(arguments='{"n": 1}').json()["id"])
    spec = JobSpec.load(gateway.storage, job_id)
    gateway.storage.put_bytes(spec.results_key, b'{"answer": 42}')
    gateway.storage.put_bytes(spec.logs_key, b"hello\n")
    gateway.advance(job_id, RUNNING, COMPLETED)
    with gateway.database.session() as session:
        ended = db.utcnow() - timedelta(days=ended_days_ago)
        session.execute(update(db.Job).where(db.Job.id == job_id).values(status_at=ended))
        session.commit()
    return job_id


def kept(gateway: Gateway, job_id: str) -> list[bool]:
    area = "users/mockuser"
    keys = [layout.job_spec(job_id), layout.job_artifact(job_id), layout.job_logs(job_id)]
    keys += [layout.arguments_file(area, job_id), layout.results_file(area, job_id)]
    return [gateway.storage.exists(key) for key in keys]


def test_only_the_data_of_jobs_past_the_cutoff_goes(gateway: Gateway) -> None:
    old = finished_job(gateway, ended_days_ago=40)
    recent = finished_job(gateway, ended_days_ago=10)
    running = str(gateway.run().json()["id"])
    gateway.advance(running, RUNNING)
    gateway.storage.put_bytes("users/mockuser/own-file.txt", b"the user's own file")
    cutoff = db.utcnow() - timedelta(days=30)

    removed = retention.remove_expired(gateway.database, gateway.storage, cutoff)
    assert removed.jobs == 1 and removed.bytes > len(b'{"answer": 42}')
    assert kept(gateway, old) == [False] * 5
    assert kept(gateway, recent) == [True] * 5
    assert kept(gateway, running)[:2] == [True, True]
    assert gateway.storage.get_bytes("users/mockuser/own-file.txt") == b"the user's own file"
    assert gateway.job(old)["status"] == "SUCCEEDED", "the job's record stays"
    assert gateway.call("GET", f"/jobs/{old}/logs").json() == {"logs": DATA_REMOVED}
    assert gateway.call("GET", f"/jobs/{old}/result").status_code == 204
    assert gateway.call("GET", f"/jobs/{recent}/logs").json() == {"logs": "hello\n"}
    assert retention.remove_expired(gateway.database, gateway.storage, cutoff).jobs == 0, "once is enough"
