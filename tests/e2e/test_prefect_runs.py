"""Any flow run of a program's deployment is a job: runs started in Prefect, as the UI, the CLI, a
schedule or an automation start them, are adopted as jobs of the program's author."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import requests
from conftest import TERMINAL, Stack, upload, wait_for
from qiskit_serverless import ServerlessClient
from stack_process import TEST_PORTS

API = f"http://127.0.0.1:{TEST_PORTS['QS_PREFECT_PORT']}/api"


def prefect(stack: Stack, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, f"{API}{path}", auth=stack.prefect_login(), timeout=30, **kwargs)


def deployment_of(stack: Stack, title: str, owner: str = "mockuser") -> dict[str, Any]:
    response = prefect(stack, "GET", f"/deployments/name/run_program/{quote(f'{title} ({owner})')}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def adopted_job(client: ServerlessClient, flow_run_id: str, timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [job for job in client.jobs(limit=50) if job.job_id == flow_run_id]
        if found:
            return found[0]
        time.sleep(0.2)
    raise AssertionError(f"flow run {flow_run_id} never became a job")


def test_a_custom_run_from_prefect_is_a_job_of_the_author(stack: Stack, client: ServerlessClient) -> None:
    upload(client, "hello-prefect", "hello")
    deployment = deployment_of(stack, "hello-prefect")
    assert list(deployment["parameter_openapi_schema"]["properties"]) == ["arguments"]
    started = time.monotonic()
    custom = {"parameters": {"arguments": {"name": "prefect"}}}
    made = prefect(stack, "POST", f"/deployments/{deployment['id']}/create_flow_run", json=custom)
    assert made.status_code == 201, made.text
    job = adopted_job(client, made.json()["id"])
    assert time.monotonic() - started < 5, "adopted within a second or two of its start"
    assert wait_for(job, TERMINAL) == "DONE", job.logs()
    assert job.result() == {"hello": "prefect"}
    run = stack.flow_run_of(job.job_id)
    assert run["id"] == job.job_id, "a run started in Prefect is the job of the run's id"
    assert "user:mockuser" in run["tags"], "it counts against its author's active-job limit"


def test_a_quick_run_without_parameters_runs_with_no_arguments(stack: Stack, client: ServerlessClient) -> None:
    upload(client, "hello-quick", "hello")
    deployment = deployment_of(stack, "hello-quick")
    made = prefect(stack, "POST", f"/deployments/{deployment['id']}/create_flow_run", json={})
    assert made.status_code == 201, made.text
    job = adopted_job(client, made.json()["id"])
    assert wait_for(job, TERMINAL) == "DONE", job.logs()
    assert job.result() == {"hello": "world"}


def test_a_retry_of_a_finished_job_from_prefect_is_refused(stack: Stack, client: ServerlessClient) -> None:
    job = upload(client, "hello-retry", "hello").run(name="once")
    assert wait_for(job, TERMINAL) == "DONE", job.logs()
    run_id = stack.flow_run_of(job.job_id)["id"]
    retry = {"state": {"type": "SCHEDULED", "name": "AwaitingRetry"}, "force": True}
    assert prefect(stack, "POST", f"/flow_runs/{run_id}/set_state", json=retry).status_code == 201
    deadline = time.monotonic() + 30
    while prefect(stack, "GET", f"/flow_runs/{run_id}").json()["state_type"] != "COMPLETED":
        assert time.monotonic() < deadline, "the finished run was not given its final state back"
        time.sleep(0.2)
    assert wait_for(job, TERMINAL, timeout=10) == "DONE", "the job's status follows its run's, within moments"
    assert job.result() == {"hello": "once"}
    assert "not run again" in prefect(stack, "GET", f"/flow_runs/{run_id}").json()["state"]["message"]


def test_a_reupload_keeps_what_was_set_in_prefect(stack: Stack, client: ServerlessClient) -> None:
    upload(client, "hello-kept", "hello")
    deployment = deployment_of(stack, "hello-kept")
    changed = {"parameters": {"arguments": {"name": "default"}}, "concurrency_limit": 3}
    assert prefect(stack, "PATCH", f"/deployments/{deployment['id']}", json=changed).status_code == 204
    upload(client, "hello-kept", "hello")
    after = deployment_of(stack, "hello-kept")
    assert after["id"] == deployment["id"]
    assert after["parameters"] == {"arguments": {"name": "default"}}
    assert after["global_concurrency_limit"]["limit"] == 3


def test_a_jobs_flow_run_records_its_job_and_keeps_private_lines_out(stack: Stack, client: ServerlessClient) -> None:
    job = upload(client, "private-lines", "private_lines").run()
    assert wait_for(job, TERMINAL) == "DONE", job.logs()
    of_run = {"flow_run_id": {"any_": [stack.flow_run_of(job.job_id)["id"]]}}
    deadline = time.monotonic() + 15
    while True:
        logs = prefect(stack, "POST", "/logs/filter", json={"logs": of_run}).json()
        artifacts = prefect(stack, "POST", "/artifacts/filter", json={"artifacts": of_run})
        messages = [entry["message"] for entry in logs]
        if "an ordinary line for the Prefect UI" in messages and artifacts.json():
            break
        assert time.monotonic() < deadline, (messages, artifacts.text)
        time.sleep(0.5)
    assert not any("provider-secret-line" in message for message in messages)
    [record] = artifacts.json()
    assert record["key"] == f"job-{job.job_id}" and record["type"] == "markdown"
    for fact in (job.job_id, "private-lines", "mockuser", "SUCCEEDED", f"/api/v1/jobs/{job.job_id}/result"):
        assert fact in record["data"], (fact, record["data"])
