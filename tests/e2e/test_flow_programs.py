"""A program may be a Prefect flow (gateway/prefect_api/): its tasks run on Ray, its runs are
recorded in Prefect inside its job's flow run, and its Prefect client reaches nothing else."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests
from conftest import TERMINAL, Stack, upload, wait_for, wait_for_log
from qiskit_serverless import ServerlessClient
from stack_process import TEST_PORTS

PREFECT = f"http://127.0.0.1:{TEST_PORTS['QS_PREFECT_PORT']}/api"


def wait_until(check: Callable[[], bool], timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def prefect(stack: Stack, path: str, body: dict[str, Any] | None = None) -> Any:
    """The operator's view: Prefect's own API with its credentials."""
    if body is None:
        answer = requests.get(f"{PREFECT}/{path}", auth=stack.prefect_login(), timeout=30)
    else:
        answer = requests.post(f"{PREFECT}/{path}", json=body, auth=stack.prefect_login(), timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_flow_program_runs_its_tasks_on_ray_nested_in_its_job(stack: Stack, client: ServerlessClient) -> None:
    job = upload(client, "prefect-flow", "prefect_flow").run(seeds=[1, 2])
    assert wait_for(job, TERMINAL, timeout=240) == "DONE", job.logs()
    result = job.result()

    tasks = [*result["depths"], result["retried"]]
    assert all(task["pid"] != result["program_pid"] for task in tasks), "tasks run in Ray workers, not the program"
    assert all(len(task["worker"]) == 56 for task in tasks), tasks  # Ray worker ids (28 bytes, hex)
    assert result["retried"]["attempts"] == 2, "retries=1: the failed first attempt is retried"
    assert all(depth["depth"] > 0 for depth in result["depths"])
    assert result["cache"] == ["Completed", "Cached", 49], "the second call of the cached task is not run"

    # In Prefect: the program's flow run sits inside the job's flow run, with its task runs.
    nested = prefect(stack, f"flow_runs/{result['flow_run_id']}")
    assert nested["state_type"] == "COMPLETED"
    assert f"in-job:{job.job_id}" in nested["tags"]
    placeholder = prefect(stack, f"task_runs/{nested['parent_task_run_id']}")
    assert placeholder["flow_run_id"] == stack.flow_run_of(job.job_id)["id"]
    assert placeholder["state_type"] == "COMPLETED"
    reporting = {task["task_run_id"] for task in tasks}
    of_nested = {"task_runs": {"flow_run_id": {"any_": [nested["id"]]}}}

    def task_runs() -> list[tuple[str, str]]:  # recorded from their events, a moment after they happen
        return sorted((run["name"].rsplit("-", 1)[0], run["state_name"]) for run in recorded())

    def recorded() -> list[dict[str, Any]]:
        return list(prefect(stack, "task_runs/filter", of_nested))

    expected = [("circuit_depth", "Completed")] * 2 + [("second_try", "Completed"), ("square", "Cached")]
    expected = sorted([*expected, ("square", "Completed")])
    assert wait_until(lambda: task_runs() == expected), task_runs()
    assert reporting <= {run["id"] for run in recorded()}
    logs = prefect(stack, "logs/filter", {"logs": {"flow_run_id": {"any_": [nested["id"]]}}})
    assert any("ran on Ray worker" in entry["message"] for entry in logs), logs
    assert "Finished in state Completed()" in job.logs()


def test_a_flow_programs_prefect_client_reaches_only_its_own_job(stack: Stack, client: ServerlessClient) -> None:
    other = upload(client, "hello-for-snoop", "hello").run()
    assert wait_for(other, TERMINAL) == "DONE"
    other_run = stack.flow_run_of(other.job_id)["id"]
    job = upload(client, "prefect-snoop", "prefect_snoop").run(other_flow_run_id=other_run)
    assert wait_for(job, TERMINAL, timeout=180) == "DONE", job.logs()
    report = job.result()
    assert report["statuses"] == {
        "read another job's flow run": 403,
        "read another job's logs": 403,
        "list deployments": 403,
        "list work pools": 403,
        "read a variable": 403,
        "list block documents": 403,
        "cancel another job's run": 403,
    }
    assert report["found_by_widened_filter"] == [report["own_run"]], "an `or_` filter finds only its own run"

    # Over the event stream, a task run of its own flow run is recorded; one in another job's is not,
    # nor one whose payload names another job's run.
    def task_run(key: str) -> requests.Response:
        return requests.get(f"{PREFECT}/task_runs/{report[key]}", auth=stack.prefect_login(), timeout=30)

    assert wait_until(lambda: task_run("own_task_run").status_code == 200)
    assert wait_until(lambda: task_run("posing_task_run").status_code == 200)
    assert task_run("posing_task_run").json()["flow_run_id"] == report["own_run"]
    assert task_run("foreign_task_run").status_code == 404


def test_a_stopped_flow_programs_flow_run_ends_with_its_job(stack: Stack, client: ServerlessClient) -> None:
    job = upload(client, "prefect-flow-waits", "prefect_flow_waits").run()
    wait_for_log(job, "inside the flow", timeout=120)
    job.stop()
    assert wait_for(job, TERMINAL) == "CANCELED"
    of_job = {"flow_runs": {"tags": {"all_": [f"in-job:{job.job_id}"]}}}
    assert wait_until(lambda: prefect(stack, "flow_runs/filter", of_job)[0]["state_type"] == "CANCELLED")
    [run] = prefect(stack, "flow_runs/filter", of_job)
    assert run["state"]["message"] == "The job's program ended before this flow run did."
    placeholder = f"task_runs/{run['parent_task_run_id']}"
    assert wait_until(lambda: prefect(stack, placeholder)["state_type"] == "CANCELLED")


def test_the_prefect_api_of_programs_takes_only_a_running_jobs_token(stack: Stack) -> None:
    assert stack.get("/api/v1/prefect/admin/version", token=None).status_code == 401
    refused = stack.get("/api/v1/prefect/admin/version")  # a user's own token is no job's
    assert refused.status_code == 403 and "running job" in refused.json()["message"]
