"""Running, reading, filtering and stopping jobs, in-process against the fake Prefect.

The fake plays Prefect and the executor (`advance`); everything else is the real gateway.
"""

from __future__ import annotations

import json

import pytest
from gateway_harness import MAX_ACTIVE_JOBS, OTHER_TOKEN, Gateway
from prefect.client.schemas.objects import StateType

from core import layout
from core.job_spec import TOKEN_VARIABLE, JobSpec
from gateway import directory

PENDING, RUNNING, COMPLETED = StateType.PENDING, StateType.RUNNING, StateType.COMPLETED


def started(gateway: Gateway, arguments: str = "{}") -> str:
    if not gateway.call("GET", "/programs").json():
        assert gateway.upload().status_code == 200
    response = gateway.run(arguments=arguments)
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def test_run_records_the_job_and_its_flow_run(gateway: Gateway) -> None:
    program = gateway.upload().json()
    response = gateway.run(arguments='{"n": 2}')
    assert response.status_code == 200, response.text
    created = response.json()
    assert (created["status"], created["program"], created["arguments"]) == ("QUEUED", program["id"], '{"n": 2}')
    run = gateway.prefect.run_of(created["id"])
    assert run is not None, "the dispatcher made its run"
    assert run.tags == ["user:mockuser", "program:hello", f"job:{created['id']}"]
    assert run.parameters == {"arguments": {"n": 2}}, "the program's own parameter; the token never goes into Prefect"

    spec = JobSpec.load(gateway.storage, created["id"])
    assert spec.env["ENV_JOB_ID_GATEWAY"] == created["id"]
    assert spec.env["ENV_JOB_GATEWAY_HOST"] == "http://gateway.test"
    assert gateway.storage.get_bytes(spec.arguments_key) == b'{"n": 2}'
    assert gateway.storage.get_bytes(spec.artifact_key), "each job runs its own snapshot of the artifact"


def test_status_follows_the_flow_run(gateway: Gateway) -> None:
    job_id = started(gateway)
    assert gateway.job(job_id)["status"] == "QUEUED"
    for state, expected in ((PENDING, "PENDING"), (RUNNING, "RUNNING"), (COMPLETED, "SUCCEEDED")):
        gateway.advance(job_id, state)
        assert gateway.job(job_id)["status"] == expected


def test_arguments_are_checked_before_anything_runs(gateway: Gateway) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    gateway.upload(arguments_schema=json.dumps(schema))
    for arguments, message in (("[1]", "'arguments' must be a JSON object."), ("{", "'arguments' must be JSON text.")):
        refused = gateway.run(arguments=arguments)
        assert (refused.status_code, refused.json()["message"]) == (400, message)
    invalid = gateway.run(arguments='{"n": "two"}')
    assert invalid.status_code == 400 and invalid.json()["path"] == ["n"]
    assert gateway.prefect.runs == {}


def test_the_active_job_limit_counts_only_active_runs(gateway: Gateway) -> None:
    jobs = [started(gateway) for _ in range(MAX_ACTIVE_JOBS)]
    refused = gateway.run()
    assert (refused.status_code, refused.json()) == (
        429,
        {"message": f"Active job limit reached. The maximum allowed is {MAX_ACTIVE_JOBS}."},
    )
    gateway.advance(jobs[0], RUNNING, COMPLETED)
    assert gateway.run().status_code == 200


def test_a_disabled_function_refuses_runs_with_its_message(gateway: Gateway) -> None:
    assert gateway.upload(provider="mockprovider").status_code == 200
    with gateway.database.session() as session:
        directory.set_disabled(session, "mockprovider", "hello", True, "Down for maintenance.")
        session.commit()
    refused = gateway.run("mockprovider/hello")
    assert (refused.status_code, refused.json()) == (423, {"message": "Down for maintenance."})


def test_stop_of_a_queued_job_cancels_it_at_once(gateway: Gateway) -> None:
    job_id = started(gateway)
    stopped = gateway.call("POST", f"/jobs/{job_id}/stop", json={"service": None})
    assert stopped.json()["message"] == (
        "Job has been stopped. QiskitRuntimeService not found, cannot stop runtime jobs. "
        "Serverless job was running and has been stopped."
    )
    assert gateway.job(job_id)["status"] == "STOPPED"
    again = gateway.call("POST", f"/jobs/{job_id}/stop")
    assert again.json()["message"].startswith("Job already in terminal state.")


def test_stop_of_a_running_job_goes_through_stopping(gateway: Gateway) -> None:
    job_id = started(gateway)
    gateway.advance(job_id, PENDING, RUNNING)
    gateway.prefect.executor_settles_stops = False
    gateway.call("PATCH", f"/jobs/{job_id}/sub_status", data={"sub_status": "MAPPING"})
    gateway.call("POST", f"/jobs/{job_id}/stop")
    assert gateway.job(job_id)["status"] == "STOPPING"
    assert gateway.prefect.run_of(job_id).state.type == StateType.CANCELLING  # type: ignore[union-attr]
    gateway.advance(job_id, StateType.CANCELLED)
    assert gateway.job(job_id) | {"created": None} == {
        "id": job_id,
        "status": "STOPPED",
        "program": gateway.job(job_id)["program"],
        "created": None,
        "sub_status": None,
        "fleet_id": None,
        "compute_profile": None,
        "business_model": "SUBSIDIZED",
        "result": None,
    }


def test_status_filter_and_paging(gateway: Gateway) -> None:
    jobs = [started(gateway) for _ in range(3)]
    gateway.advance(jobs[0], RUNNING, COMPLETED)
    gateway.advance(jobs[1], RUNNING, StateType.CRASHED)
    succeeded = gateway.call("GET", "/jobs", params={"status": "SUCCEEDED"}).json()
    assert (succeeded["count"], [job["id"] for job in succeeded["results"]]) == (1, [jobs[0]])
    failed = gateway.call("GET", "/jobs", params={"status": "FAILED"}).json()
    assert [job["id"] for job in failed["results"]] == [jobs[1]]
    page = gateway.call("GET", "/jobs", params={"limit": 2}).json()
    assert page["count"] == 3 and [job["id"] for job in page["results"]] == [jobs[2], jobs[1]]
    assert page["next"].endswith("/api/v1/jobs?limit=2&offset=2") and page["previous"] is None
    assert gateway.call("GET", "/jobs", params={"status": "DONE"}).json()["count"] == 0


def test_sub_status_shows_only_while_running(gateway: Gateway) -> None:
    job_id = started(gateway)
    gateway.advance(job_id, PENDING, RUNNING)
    updated = gateway.call("PATCH", f"/jobs/{job_id}/sub_status", data={"sub_status": "EXECUTING_QPU"})
    assert updated.json()["job"]["sub_status"] == "EXECUTING_QPU"
    assert gateway.job(job_id)["sub_status"] == "EXECUTING_QPU"
    invalid = gateway.call("PATCH", f"/jobs/{job_id}/sub_status", data={"sub_status": "DANCING"})
    assert invalid.json() == {"message": "'sub_status' not provided or is not valid"}
    gateway.advance(job_id, COMPLETED)
    assert gateway.job(job_id)["sub_status"] is None
    late = gateway.call("PATCH", f"/jobs/{job_id}/sub_status", data={"sub_status": "MAPPING"})
    assert (late.status_code, late.json()) == (403, {"message": "You can update the sub status of active jobs only"})


def test_events_merge_the_state_history_and_recorded_events(gateway: Gateway) -> None:
    job_id = started(gateway)
    gateway.advance(job_id, PENDING, RUNNING)
    error = {"type": "ERROR", "code": 7, "message": "bad qubit ", "exception": "ValueError", "args": [1]}
    assert gateway.call("POST", f"/jobs/{job_id}/event", json=error).status_code == 200
    gateway.call("PATCH", f"/jobs/{job_id}/sub_status", data={"sub_status": "MAPPING"})
    gateway.advance(job_id, StateType.FAILED)
    events = gateway.call("GET", f"/jobs/{job_id}/events").json()
    statuses = [event["data"]["status"] for event in events if event["event_type"] == "STATUS_CHANGE"]
    assert statuses == ["FAILED", "RUNNING", "PENDING", "QUEUED"], "newest first"
    only_errors = gateway.call("GET", f"/jobs/{job_id}/events", params={"type": "error"}).json()
    assert [event["data"] for event in only_errors] == [
        {"code": "7", "message": "bad qubit", "exception": "ValueError", "args": [1]}
    ]
    assert {event["event_type"] for event in events} == {"STATUS_CHANGE", "ERROR", "SUB_STATUS_CHANGE"}
    late = gateway.call("POST", f"/jobs/{job_id}/event", json=error)
    assert (late.status_code, late.json()) == (403, {"message": "You can create events on active jobs only"})
    unknown = gateway.call("GET", f"/jobs/{job_id}/events", params={"type": "NOISE"})
    assert unknown.status_code == 400


def test_result_and_logs_are_read_from_storage(gateway: Gateway) -> None:
    job_id = started(gateway)
    assert gateway.call("GET", f"/jobs/{job_id}/result").status_code == 204
    assert gateway.call("GET", f"/jobs/{job_id}/logs").status_code == 204
    spec = JobSpec.load(gateway.storage, job_id)
    gateway.storage.put_bytes(spec.results_key, b'{"answer": 42}')
    gateway.storage.put_bytes(layout.job_logs(job_id), b"hello\n[PRIVATE] secret\n")
    assert gateway.call("GET", f"/jobs/{job_id}/result").json() == {"result": '{"answer": 42}'}
    assert gateway.call("GET", f"/jobs/{job_id}/logs").json() == {"logs": "hello\nsecret\n"}
    assert gateway.call("GET", f"/jobs/{job_id}", params={"with_result": "true"}).json()["result"] == '{"answer": 42}'


def test_a_job_token_lives_as_long_as_its_job(gateway: Gateway) -> None:
    job_id = started(gateway)
    token = JobSpec.load(gateway.storage, job_id).env[TOKEN_VARIABLE]
    assert gateway.call("GET", f"/jobs/{job_id}", token).json()["status"] == "QUEUED"
    assert gateway.call("GET", "/programs", token).status_code == 200, "a user's own program acts as the user"
    gateway.advance(job_id, RUNNING, COMPLETED)
    expired = gateway.call("GET", f"/jobs/{job_id}", token)
    assert (expired.status_code, expired.json()) == (401, {"message": "Invalid token."})


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/jobs/{id}"),
        ("GET", "/jobs/{id}/result"),
        ("GET", "/jobs/{id}/events"),
        ("POST", "/jobs/{id}/stop"),
        ("GET", "/jobs/{id}/runtime_jobs"),
    ],
)
def test_another_users_job_does_not_exist_for_them(gateway: Gateway, method: str, path: str) -> None:
    job_id = started(gateway)
    response = gateway.call(method, path.format(id=job_id), OTHER_TOKEN)
    assert (response.status_code, response.json()) == (404, {"message": f"Job [{job_id}] not found"})
    assert gateway.job(job_id)["status"] == "QUEUED", "nothing of the owner's job changed"


def test_another_user_cannot_run_or_list_the_program(gateway: Gateway) -> None:
    program = gateway.upload().json()
    refused = gateway.run(token=OTHER_TOKEN)
    assert (refused.status_code, refused.json()) == (404, {"message": "Qiskit Function hello doesn't exist."})
    jobs = gateway.call("GET", f"/programs/{program['id']}/get_jobs", OTHER_TOKEN)
    assert jobs.status_code == 404
    assert gateway.prefect.runs == {}
