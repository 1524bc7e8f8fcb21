"""Schedules through /api/v1 are the deployment's own Prefect schedules; each run is a job."""

from __future__ import annotations

import time

from conftest import TERMINAL, Stack, upload, wait_for
from qiskit_serverless import ServerlessClient
from test_prefect_runs import deployment_of, prefect


def test_an_interval_schedule_runs_jobs_until_it_is_removed(stack: Stack, client: ServerlessClient) -> None:
    function = upload(client, "ticking", "hello")
    listed = stack.get("/api/v1/programs/get_by_title/ticking/").json()
    schedules = f"/api/v1/programs/{listed['id']}/schedules"
    made = stack.post(schedules, json={"interval_seconds": 10, "arguments": '{"name": "tick"}'})
    assert made.status_code == 201, made.text
    schedule = made.json()
    assert len(schedule["next_runs"]) == 5
    deployment = deployment_of(stack, "ticking")
    in_prefect = prefect(stack, "GET", f"/deployments/{deployment['id']}/schedules").json()
    assert [each["id"] for each in in_prefect] == [schedule["id"]], "the deployment's own schedule, seen in the UI"

    upload(client, "ticking", "hello")  # a re-upload keeps it
    assert [each["id"] for each in stack.get(schedules).json()] == [schedule["id"]]

    deadline = time.monotonic() + 60
    done: list = []  # type: ignore[type-arg]
    while len(done) < 2:
        assert time.monotonic() < deadline, "two scheduled jobs within 60 s"
        done = [job for job in client.jobs(limit=100, function=function) if job.status() == "DONE"]
        time.sleep(1)
    assert all(job.result() == {"hello": "tick"} for job in done[:2])

    assert stack.request("DELETE", f"{schedules}/{schedule['id']}").status_code == 204
    time.sleep(2)  # a run due right now may still be claimed
    settled = {job.job_id for job in client.jobs(limit=100, function=function)}
    for job in client.jobs(limit=100, function=function):
        wait_for(job, TERMINAL)
    time.sleep(12)  # more than one interval
    assert {job.job_id for job in client.jobs(limit=100, function=function)} == settled, "no run after removal"
