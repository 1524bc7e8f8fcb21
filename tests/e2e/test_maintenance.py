"""The maintenance deployment, served by the stack's Prefect runner: a run removes the data of jobs
that ended before its cut-off, and nothing newer, and its report artifact says so."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import requests
from conftest import TERMINAL, Stack, upload, wait_for
from stack_process import TEST_PORTS

PREFECT = f"http://127.0.0.1:{TEST_PORTS['QS_PREFECT_PORT']}/api"


def prefect(stack: Stack, method: str, path: str, **body: object) -> requests.Response:
    response = requests.request(method, f"{PREFECT}{path}", json=body or None, auth=stack.prefect_login(), timeout=30)
    assert response.status_code in (200, 201), response.text
    return response


def run_logs(stack: Stack, run: dict[str, str]) -> str:
    logs = prefect(stack, "POST", "/logs/filter", logs={"flow_run_id": {"any_": [run["id"]]}}).json()
    return "\n".join(str(line["message"]) for line in logs)


def test_a_maintenance_run_removes_old_job_data_and_nothing_newer(stack: Stack) -> None:
    client = stack.client()
    function = upload(client, "retained", "hello")
    old = function.run(name="old")
    assert wait_for(old, TERMINAL) == "DONE"
    time.sleep(1)
    cutoff = datetime.now(UTC)
    time.sleep(1)
    new = function.run(name="new")
    assert wait_for(new, TERMINAL) == "DONE"

    deployment = prefect(stack, "GET", "/deployments/name/maintenance/qiskit-serverless-maintenance").json()
    assert deployment["schedules"], "it runs on QS_MAINTENANCE_CRON"
    run = prefect(
        stack,
        "POST",
        f"/deployments/{deployment['id']}/create_flow_run",
        parameters={"finished_before": cutoff.isoformat()},
    ).json()
    deadline = time.monotonic() + 120
    while (state := prefect(stack, "GET", f"/flow_runs/{run['id']}").json()["state"]["type"]) != "COMPLETED":
        assert state not in ("FAILED", "CRASHED", "CANCELLED") and time.monotonic() < deadline, run_logs(stack, run)
        time.sleep(1)

    storage = stack.data_dir / "storage"
    assert not (storage / "jobs" / old.job_id).exists()
    assert not (storage / "users" / "mockuser" / "results" / f"{old.job_id}.json").exists()
    assert not (storage / "users" / "mockuser" / "arguments" / f"{old.job_id}.json").exists()
    assert (storage / "jobs" / new.job_id / "artifact.tar").exists()
    assert new.result() == {"hello": "new"}
    assert old.status() == "DONE", "the job's record stays"
    assert "removed after the retention period" in old.logs()

    artifacts = prefect(stack, "POST", "/artifacts/filter", artifacts={"flow_run_id": {"any_": [run["id"]]}}).json()
    [report] = [artifact for artifact in artifacts if artifact["key"] == "maintenance-report"]
    assert "data of **" in report["data"] and "**0** jobs" not in report["data"]
