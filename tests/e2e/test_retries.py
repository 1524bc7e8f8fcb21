"""Retries: Prefect retries a failed attempt of the job's flow run; the job keeps every attempt's output."""

from __future__ import annotations

import time
from typing import Any

from conftest import TERMINAL, Stack, upload, wait_for
from qiskit_serverless import ServerlessClient


def run_with(stack: Stack, client: ServerlessClient, title: str, **config: int) -> Any:
    created = stack.post("/api/v1/programs/run/", json={"title": title, "arguments": "{}", "config": config})
    assert created.status_code == 200, created.text
    return client.job(created.json()["id"])


def test_a_failed_attempt_is_retried_and_the_job_succeeds(stack: Stack, client: ServerlessClient) -> None:
    upload(client, "flaky", "flaky")
    job = run_with(stack, client, "flaky", retries=1, retry_delay_seconds=1)
    assert wait_for(job, TERMINAL) == "DONE", job.logs()
    assert job.result() == {"attempt": 2}
    logs = job.logs()
    marks = [logs.index(text) for text in ("attempt 1 running", "----- attempt 2 of 2 -----", "attempt 2 running")]
    assert marks == sorted(marks), logs
    events = stack.get(f"/api/v1/jobs/{job.job_id}/events/").json()
    messages = [event["data"].get("message") for event in events]
    assert "retrying, attempt 2 of 2" in messages, events


def test_without_retries_the_first_failure_ends_the_job(stack: Stack, client: ServerlessClient) -> None:
    upload(client, "flaky-once", "flaky")
    job = run_with(stack, client, "flaky-once", retries=0)
    assert wait_for(job, TERMINAL) == "ERROR", job.logs()
    assert "attempt 2" not in job.logs()


def test_a_functions_default_retries_apply_to_its_runs(stack: Stack, client: ServerlessClient) -> None:
    upload(client, "flaky-default", "flaky")
    listed = stack.get("/api/v1/programs/get_by_title/flaky-default/").json()
    updated = stack.post("/api/v1/programs/upload/", data={"title": "flaky-default", "retries": "2"})
    assert updated.status_code == 200, updated.text
    assert updated.json()["id"] == listed["id"]
    job = client.function("flaky-default").run()
    assert wait_for(job, TERMINAL) == "DONE", job.logs()
    assert "attempt 2 of 3" in job.logs()


def test_a_stop_during_the_retry_delay_stops_the_job(stack: Stack, client: ServerlessClient) -> None:
    upload(client, "flaky-stopped", "flaky")
    job = run_with(stack, client, "flaky-stopped", retries=1, retry_delay_seconds=6)
    deadline = time.monotonic() + 60
    while "attempt 1 running" not in job.logs() or job.status() != "QUEUED":
        assert time.monotonic() < deadline, "the first attempt failed and the job waits QUEUED for its retry"
        time.sleep(0.3)
    stopped = stack.post(f"/api/v1/jobs/{job.job_id}/stop/", json={"service": None})
    assert stopped.status_code == 200, stopped.text
    assert wait_for(job, TERMINAL, timeout=30) == "CANCELED"
    time.sleep(9)  # past the retry's due time: Prefect would let the engine run the cancelled run again
    assert "attempt 2 running" not in job.logs() and job.status() == "CANCELED"
