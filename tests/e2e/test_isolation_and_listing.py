"""Users only ever see their own things; job listing filters and pagination."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from conftest import TERMINAL, Stack, upload, wait_for
from qiskit_serverless import ServerlessClient
from qiskit_serverless.exception import QiskitServerlessException


@pytest.fixture(scope="module")
def finished_job(client: ServerlessClient):  # type: ignore[no-untyped-def]
    job = upload(client, "private-hello", "hello").run(name="a")
    assert wait_for(job, TERMINAL) == "DONE"
    return job


def test_other_user_gets_404_on_everything(stack: Stack, finished_job) -> None:  # type: ignore[no-untyped-def]
    job_id = finished_job.job_id
    other = stack.client("other_token")
    with pytest.raises(QiskitServerlessException, match="404"):
        other.function("private-hello")
    assert all(function.title != "private-hello" for function in other.functions())
    for path in (f"/api/v1/jobs/{job_id}/", f"/api/v1/jobs/{job_id}/result/", f"/api/v1/jobs/{job_id}/events/"):
        response = stack.get(path, token="other_token")
        assert response.status_code == 404, path
        assert response.json() == {"message": f"Job [{job_id}] not found"}
    assert stack.post(f"/api/v1/jobs/{job_id}/stop/", token="other_token", json={"service": "null"}).status_code == 404
    logs = stack.get(f"/api/v1/jobs/{job_id}/logs/", token="other_token")
    assert logs.status_code == 403
    run = stack.post("/api/v1/programs/run/", token="other_token", json={"title": "private-hello", "arguments": "{}"})
    assert run.status_code == 404
    assert run.json() == {"message": "Qiskit Function private-hello doesn't exist."}
    assert job_id not in [job.job_id for job in other.jobs(limit=0)]
    # and nothing of the owner's changed
    assert finished_job.status() == "DONE" and finished_job.result() == {"hello": "a"}


def test_list_filters_and_pagination(stack: Stack, client: ServerlessClient) -> None:
    marker = datetime.now(UTC) - timedelta(seconds=1)
    function = upload(client, "listed", "hello")
    jobs = [function.run(name=str(index)) for index in range(3)]
    for job in jobs:
        assert wait_for(job, TERMINAL) == "DONE"

    page = stack.get("/api/v1/jobs/", params={"limit": 2, "offset": 0, "function": "listed"}).json()
    assert page["count"] == 3
    assert [item["id"] for item in page["results"]] == [jobs[2].job_id, jobs[1].job_id]
    assert page["next"].endswith("?limit=2&offset=2") and page["previous"] is None
    last = stack.get("/api/v1/jobs/", params={"limit": 2, "offset": 2, "function": "listed"}).json()
    assert [item["id"] for item in last["results"]] == [jobs[0].job_id]
    assert last["next"] is None and last["previous"].endswith("?limit=2&offset=0")
    beyond = stack.get("/api/v1/jobs/", params={"limit": 2, "offset": 9, "function": "listed"}).json()
    assert beyond["results"] == [] and beyond["count"] == 3

    done = client.jobs(function, status="DONE", limit=10)
    assert {job.job_id for job in done} == {job.job_id for job in jobs}
    assert client.jobs(function, status="ERROR") == []
    recent = client.jobs(created_after=str(marker), limit=0)
    assert {job.job_id for job in jobs} <= {job.job_id for job in recent}
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert stack.get("/api/v1/jobs/", params={"created_after": future}).json()["count"] == 0

    unknown = stack.get("/api/v1/jobs/", params={"function": "no-such-function"})
    assert unknown.status_code == 404
    assert unknown.json() == {"message": "Qiskit Function no-such-function doesn't exist."}
    assert stack.get("/api/v1/jobs/", params={"limit": "ten"}).status_code == 400
    assert stack.get("/api/v1/jobs/", params={"created_after": "yesterday"}).status_code == 400
    assert stack.get("/api/v1/jobs/", params={"filter": "everything"}).status_code == 400
    serverless = stack.get("/api/v1/jobs/", params={"filter": "serverless", "limit": 0}).json()
    assert serverless["count"] >= 3
    assert all(item["program"]["provider"] is None for item in serverless["results"])
    catalog = stack.get("/api/v1/jobs/", params={"filter": "catalog", "limit": 0}).json()["results"]
    assert all(item["program"]["provider"] for item in catalog)  # only provider functions' jobs
    assert not {item["id"] for item in catalog} & {job.job_id for job in jobs}
