"""Bursts on one machine: every request answered, every job run exactly once, lists whole; and a
gateway killed between recording a job and starting it loses nothing."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from conftest import LIMITS, TERMINAL, Stack, upload, wait_for
from stack_process import TEST_PORTS, extra_gateway, running_stack, stack_dir

BURST, THREADS = 200, 16
POOL = "qiskit-serverless-load"
PREFECT = f"http://127.0.0.1:{TEST_PORTS['QS_PREFECT_PORT']}/api"
FINISHED = {"SUCCEEDED", "FAILED", "STOPPED"}
MAX_RUN_SECONDS = 12


@dataclass
class LoadStack:
    stack: Stack
    extra: dict[str, str]  # the environment that joins more processes to it
    prefect_owner: Stack  # the stack that started the Prefect server, and keeps its login

    def runs_tagged(self, *tags: str) -> int:
        """How many flow runs of the load pool carry these tags."""
        body = {"flow_runs": {"tags": {"all_": list(tags)}}, "work_pools": {"name": {"any_": [POOL]}}}
        auth = self.prefect_owner.prefect_login()
        counted = requests.post(f"{PREFECT}/flow_runs/count", json=body, auth=auth, timeout=30)
        assert counted.status_code == 200, counted.text
        return int(counted.json())


@pytest.fixture(scope="module")
def load(stack: Stack) -> Iterator[LoadStack]:
    """A gateway and executor of their own (work pool, store, limit of 1000 active jobs, jobs stopped
    after MAX_RUN_SECONDS) on the session's Prefect server and Ray cluster."""
    with stack_dir("qs-e2e-load-") as data_dir:
        extra = {
            "QS_PREFECT_API_URL": PREFECT,
            "QS_RAY_ADDRESS": f"127.0.0.1:{TEST_PORTS['QS_RAY_PORT']}",
            "QS_RAY_AUTH_TOKEN_FILE": str(stack.data_dir / "ray-auth-token"),
            "PREFECT_PROFILES_PATH": str(stack.data_dir / "prefect-profiles.toml"),
            "QS_WORK_POOL": POOL,
            "QS_POSTGRES_PORT": "25435",
            **LIMITS,
            "QS_MAX_ACTIVE_JOBS": "1000",
            "QS_JOB_MAX_SECONDS": str(MAX_RUN_SECONDS),
        }
        with running_stack(data_dir, {**TEST_PORTS, "QS_PORT": "28200"}, extra) as url:
            yield LoadStack(Stack(url=url, data_dir=data_dir), extra, stack)


def all_finished(stack: Stack, job_ids: set[str], timeout: float) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        listed = stack.get("/api/v1/jobs/", params={"limit": 0}).json()["results"]
        mine = {job["id"]: job for job in listed if job["id"] in job_ids}
        if all(job["status"] in FINISHED for job in mine.values()) and len(mine) == len(job_ids):
            return mine
        assert time.monotonic() < deadline, sorted(job["status"] for job in mine.values())
        time.sleep(1)


def test_a_burst_of_jobs_from_many_threads_runs_every_job_once(load: LoadStack) -> None:
    stack = load.stack
    client = stack.client()
    function = upload(client, "burst", "hello")

    def submit(index: int) -> tuple[int, str]:
        return index, function.run(name=f"job-{index}").job_id  # raises on any refused request or timeout

    with ThreadPoolExecutor(THREADS) as pool:
        submitted = dict(pool.map(submit, range(BURST)))
    assert len(set(submitted.values())) == BURST, "every request its own job"

    finished = all_finished(stack, set(submitted.values()), timeout=600)
    assert {job["status"] for job in finished.values()} == {"SUCCEEDED"}
    for index, job_id in submitted.items():
        detail = stack.get(f"/api/v1/jobs/{job_id}/", params={"with_result": "true"}).json()
        assert json.loads(detail["result"]) == {"hello": f"job-{index}"}, "each job its own result"
    assert load.runs_tagged("program:burst") == BURST, "one flow run per job, none made twice"
    assert {job.job_id for job in client.jobs(limit=BURST + 50)} >= set(submitted.values())
    assert {job.job_id for job in function.jobs(limit=BURST)} == set(submitted.values())


def test_a_job_recorded_by_a_gateway_that_dies_before_starting_it_runs_once(load: LoadStack) -> None:
    stack = load.stack
    upload(stack.client(), "recorded", "hello")
    # A second gateway of the same stack whose dispatcher makes no run (window 0): it only records.
    with extra_gateway(stack.data_dir, 28201, {**load.extra, "QS_DISPATCH_WINDOW": "0"}) as doomed:
        recorded = requests.post(
            "http://127.0.0.1:28201/api/v1/programs/run",
            json={"title": "recorded", "arguments": json.dumps({"name": "survivor"})},
            headers={"Authorization": "Bearer awesome_token"},
            timeout=30,
        )
        assert recorded.status_code == 200, recorded.text
        job_id = recorded.json()["id"]
        assert load.runs_tagged(f"job:{job_id}") == 0, "recorded, not started"
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()
    finished = all_finished(stack, {job_id}, timeout=120)  # the stack's own gateway dispatches it
    assert finished[job_id]["status"] == "SUCCEEDED"
    result = stack.get(f"/api/v1/jobs/{job_id}/", params={"with_result": "true"}).json()["result"]
    assert json.loads(result) == {"hello": "survivor"}
    assert load.runs_tagged(f"job:{job_id}") == 1, "run exactly once"


def test_a_job_that_reaches_the_maximum_run_time_is_stopped(load: LoadStack) -> None:
    stack = load.stack
    job = upload(stack.client(), "idle", "idle").run()
    assert wait_for(job, {"RUNNING"}, timeout=60) == "RUNNING"
    assert wait_for(job, TERMINAL, timeout=MAX_RUN_SECONDS + 40) == "CANCELED"
    assert "idling until stopped" in job.logs(), "its output is kept"
    events = stack.get(f"/api/v1/jobs/{job.job_id}/events/").json()
    assert events[0]["data"] == {
        "status": "STOPPED",
        "message": f"Job stopped: it reached the maximum run time of {MAX_RUN_SECONDS} s.",
    }
