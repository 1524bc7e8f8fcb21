"""What a program's Prefect client may ask through the gateway (gateway/prefect_api/policy.py)."""

from __future__ import annotations

import base64

import pytest

from gateway.auth import _bearer
from gateway.prefect_api import policy

RUN = "0b7e2a3c-1d2e-4f5a-8b9c-0d1e2f3a4b5c"
JOB = "job-1"


@pytest.mark.parametrize(
    ("method", "path", "kind"),
    [
        ("GET", "/admin/version", "open"),
        ("POST", "/flows", "create_flow"),
        ("POST", "/flow_runs", "create_flow_run"),
        ("POST", "/flow_runs/filter", "filter_flow_runs"),
        ("GET", f"/flow_runs/{RUN}", "read_flow_run"),
        ("POST", f"/flow_runs/{RUN}/set_state", "flow_run_state"),
        ("PATCH", f"/flow_runs/{RUN}/labels", "flow_run_labels"),
        ("GET", f"/task_runs/{RUN}", "read_task_run"),
        ("POST", "/logs", "logs"),
    ],
)
def test_a_running_flows_calls_pass(method: str, path: str, kind: str) -> None:
    call = policy.route(method, path)
    assert call is not None and call.kind == kind
    assert call.object_id == (RUN if RUN in path else None)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/deployments/filter"),
        ("GET", f"/deployments/{RUN}"),
        ("POST", f"/deployments/{RUN}/create_flow_run"),
        ("POST", "/work_pools/filter"),
        ("POST", "/variables/filter"),
        ("POST", "/block_documents/filter"),
        ("POST", "/logs/filter"),
        ("DELETE", f"/flow_runs/{RUN}"),
        ("POST", f"/flow_runs/{RUN}/resume"),
        ("GET", f"/flow_runs/{RUN}/graph"),
        ("POST", "/automations"),
        ("GET", "/flow_runs/not-an-id"),
    ],
)
def test_everything_else_is_refused(method: str, path: str) -> None:
    assert policy.route(method, path) is None


def test_a_programs_flow_run_gets_the_jobs_tag_and_no_deployment() -> None:
    body = policy.flow_run_body(
        {
            "name": "run",
            "flow_id": RUN,
            "deployment_id": RUN,
            "work_pool_name": "qiskit-serverless",
            "job_variables": {"image": "x"},
            "tags": ["mine", "job:someone-else", "user:mockuser", "in-job:other", "provider:p"],
            "labels": {"team": "a", "prefect.deployment.id": RUN},
            "idempotency_key": "k",
        },
        JOB,
    )
    assert body == {
        "name": "run",
        "flow_id": RUN,
        "tags": ["mine", f"in-job:{JOB}"],
        "labels": {"team": "a"},
        "idempotency_key": f"{JOB}:k",
    }


def test_a_filter_only_matches_the_jobs_runs() -> None:
    narrowed = policy.narrowed_filter({"flow_runs": {"tags": {"all_": ["x"]}, "name": {"any_": ["n"]}}}, JOB)
    assert narrowed["flow_runs"] == {"tags": {"all_": ["x", f"in-job:{JOB}"]}, "name": {"any_": ["n"]}}
    assert policy.narrowed_filter(None, JOB) == {"flow_runs": {"tags": {"all_": [f"in-job:{JOB}"]}}}


def test_a_task_run_needs_a_flow_run_and_loses_reserved_tags() -> None:
    with pytest.raises(PermissionError):
        policy.task_run_body({"name": "t", "task_key": "k", "dynamic_key": "0"})
    body = policy.task_run_body({"flow_run_id": RUN, "tags": ["a", "job:x"], "deployment_id": RUN})
    assert body == {"flow_run_id": RUN, "tags": ["a"]}


def test_logs_name_their_runs_and_entries_of_no_run_are_left_out() -> None:
    entries, runs = policy.log_runs([{"flow_run_id": RUN, "message": "a"}, {"flow_run_id": None, "message": "b"}])
    assert (entries, runs) == ([{"flow_run_id": RUN, "message": "a"}], {RUN})
    with pytest.raises(ValueError):
        policy.log_runs({"flow_run_id": RUN})


def _task_event(related: list[dict[str, str]], name: str = "prefect.task-run.Completed") -> dict[str, object]:
    return {"event": name, "resource": {"prefect.resource.id": f"prefect.task-run.{RUN}"}, "related": related}


def test_a_task_run_event_keeps_only_its_own_kinds_of_related_resources() -> None:
    flow_run = {"prefect.resource.id": f"prefect.flow-run.{RUN}", "prefect.resource.role": "flow-run"}
    posing = [
        {"prefect.resource.id": "prefect.work-pool.1", "prefect.resource.role": "work-pool"},
        {"prefect.resource.id": "prefect.deployment.1", "prefect.resource.role": "deployment"},
        {"prefect.resource.id": "prefect.tag.job:other", "prefect.resource.role": "tag"},
    ]
    kept_tag = {"prefect.resource.id": "prefect.tag.mine", "prefect.resource.role": "tag"}
    allowed = policy.event(_task_event([flow_run, *posing, kept_tag]))
    assert allowed is not None
    event, runs = allowed
    assert event["related"] == [flow_run, kept_tag]
    assert runs == {RUN}


@pytest.mark.parametrize(
    "message",
    [
        _task_event([]),  # no flow run: nowhere to record it
        _task_event([{"prefect.resource.id": f"prefect.flow-run.{RUN}", "prefect.resource.role": "flow-run"}], "x.y"),
        {"event": "prefect.flow-run.Completed", "resource": {"prefect.resource.id": f"prefect.flow-run.{RUN}"}},
        {"event": "prefect.task-run.Completed", "resource": {"prefect.resource.id": f"prefect.flow-run.{RUN}"}},
        "not an event",
    ],
)
def test_other_events_are_dropped(message: object) -> None:
    assert policy.event(message) is None


def test_a_jobs_token_in_basic_credentials_is_read_as_a_bearer_token() -> None:
    basic = base64.b64encode(b"job:secret-token").decode()
    assert _bearer(f"Basic {basic}") == "secret-token"
    assert _bearer("Bearer secret-token") == "secret-token"
    assert _bearer("Basic not-base64!") == "not-base64!", "anything else stays the token itself"
