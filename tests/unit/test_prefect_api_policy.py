"""What a program's Prefect client may ask through the gateway (gateway/prefect_api/policy.py)."""

from __future__ import annotations

import base64

import pytest

from gateway.auth import token_of
from gateway.errors import ApiError
from gateway.prefect_api import policy

RUN = "0b7e2a3c-1d2e-4f5a-8b9c-0d1e2f3a4b5c"
OTHER = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"
TASK = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
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
    widened = {"flow_runs": {"operator": "or_", "tags": {"operator": "or_", "all_": ["x"], "is_null_": True}}}
    narrowed = policy.narrowed_filter({**widened, "limit": 5}, JOB)
    assert narrowed == {
        "flow_runs": {"operator": "and_", "tags": {"operator": "and_", "all_": ["x", f"in-job:{JOB}"]}},
        "limit": 5,
    }
    assert policy.narrowed_filter(None, JOB) == {
        "flow_runs": {"operator": "and_", "tags": {"operator": "and_", "all_": [f"in-job:{JOB}"]}}
    }
    found = [{"id": "a", "tags": [f"in-job:{JOB}"]}, {"id": "b", "tags": ["in-job:other"]}, "junk"]
    assert policy.own_runs(found, JOB) == [found[0]]


def test_a_task_run_needs_a_flow_run_and_loses_reserved_tags_and_its_id() -> None:
    with pytest.raises(PermissionError):
        policy.task_run_body({"name": "t", "task_key": "k", "dynamic_key": "0"})
    with pytest.raises(ValueError):
        policy.task_run_body({"flow_run_id": f"{RUN}?x=1"})
    body = policy.task_run_body({"id": RUN, "flow_run_id": RUN.upper(), "tags": ["a", "job:x"], "deployment_id": RUN})
    assert body == {"flow_run_id": RUN, "tags": ["a"], "labels": {}}


def test_a_state_loses_its_data_and_the_details_that_name_other_things() -> None:
    given = {
        "state": {
            "type": "COMPLETED",
            "name": "Completed",
            "message": "m",
            "data": {"artifact_key": "job-other", "artifact_description": "x"},
            "state_details": {"cache_key": "shared", "child_flow_run_id": RUN, "untrackable_result": True},
        },
        "force": "yes",
    }
    assert policy.set_state_body(given) == {
        "state": {
            "type": "COMPLETED",
            "name": "Completed",
            "message": "m",
            "state_details": {"untrackable_result": True},
        },
        "force": False,
    }


def test_logs_name_their_runs_and_entries_of_no_run_are_left_out() -> None:
    entries, flow_runs, task_runs = policy.log_entries(
        [{"flow_run_id": RUN, "task_run_id": OTHER, "message": "a"}, {"flow_run_id": None, "message": "b"}]
    )
    assert (entries, flow_runs, task_runs) == (
        [{"flow_run_id": RUN, "task_run_id": OTHER, "message": "a"}],
        {RUN},
        {OTHER},
    )
    with pytest.raises(ValueError):
        policy.log_entries({"flow_run_id": RUN})
    with pytest.raises(ValueError):
        policy.log_entries([{"flow_run_id": "../deployments"}])


def _task_event(related: list[dict[str, str]], name: str = "prefect.task-run.Completed") -> dict[str, object]:
    return {
        "event": name,
        "resource": {"prefect.resource.id": f"prefect.task-run.{TASK}"},
        "related": related,
        "payload": {
            "validated_state": {"type": "COMPLETED", "name": "Completed", "data": {"artifact_key": "k"}},
            "task_run": {"name": "t", "task_key": "k", "id": OTHER, "flow_run_id": OTHER, "tags": ["job:x", "a"]},
        },
    }


FLOW_RUN = {"prefect.resource.id": f"prefect.flow-run.{RUN}", "prefect.resource.role": "flow-run"}


def test_a_task_run_event_is_rebuilt_from_what_may_pass() -> None:
    posing = [
        {"prefect.resource.id": "prefect.work-pool.1", "prefect.resource.role": "work-pool"},
        {"prefect.resource.id": "prefect.deployment.1", "prefect.resource.role": "deployment"},
        {"prefect.resource.id": "prefect.tag.job:other", "prefect.resource.role": "tag"},
    ]
    kept_tag = {"prefect.resource.id": "prefect.tag.mine", "prefect.resource.role": "tag"}
    allowed = policy.event(_task_event([FLOW_RUN, *posing, kept_tag]))
    assert allowed is not None
    assert (allowed.task_run_id, allowed.flow_run_id) == (TASK, RUN)
    assert allowed.event["related"] == [FLOW_RUN, kept_tag]
    payload = allowed.event["payload"]
    # An id or a flow_run_id in the payload would override the checked ones in Prefect's recorder.
    assert payload["task_run"] == {"name": "t", "task_key": "k", "tags": ["a"], "labels": {}}
    assert payload["validated_state"] == {"type": "COMPLETED", "name": "Completed", "state_details": {}, "data": None}


@pytest.mark.parametrize(
    "message",
    [
        _task_event([]),  # no flow run: nowhere to record it
        _task_event([FLOW_RUN, {**FLOW_RUN, "prefect.resource.id": f"prefect.flow-run.{OTHER}"}]),  # two
        _task_event([FLOW_RUN], "x.y"),
        {"event": "prefect.flow-run.Completed", "resource": {"prefect.resource.id": f"prefect.flow-run.{RUN}"}},
        {**_task_event([FLOW_RUN]), "resource": {"prefect.resource.id": f"prefect.flow-run.{RUN}"}},
        {**_task_event([FLOW_RUN]), "resource": {"prefect.resource.id": "prefect.task-run.not-an-id"}},
        "not an event",
    ],
)
def test_other_events_are_dropped(message: object) -> None:
    assert policy.event(message) is None


def test_a_jobs_token_in_basic_credentials_is_read_as_a_bearer_token() -> None:
    basic = base64.b64encode(b"job:secret-token").decode()
    assert token_of(f"Basic {basic}") == "secret-token"
    assert token_of("Bearer secret-token") == "secret-token"
    assert token_of("Basic not-base64!") == "not-base64!", "anything else stays the token itself"


def test_an_events_resource_keeps_only_the_task_runs_labels_and_follows_nothing() -> None:
    message = {
        **_task_event([FLOW_RUN]),
        "resource": {"prefect.resource.id": f"prefect.task-run.{TASK}", "team": "x", "prefect.state-type": "COMPLETED"},
        "follows": OTHER,
    }
    allowed = policy.event(message)
    assert allowed is not None
    assert allowed.event["resource"] == {
        "prefect.resource.id": f"prefect.task-run.{TASK}",
        "prefect.state-type": "COMPLETED",
        "prefect.orchestration": "client",
    }
    assert allowed.event["follows"] is None


def test_an_event_holding_a_nul_is_dropped() -> None:
    message = _task_event([FLOW_RUN])
    message["payload"]["task_run"]["name"] = "a\x00b"  # type: ignore[index]
    assert policy.event(message) is None


def _recordable_event(state_type: str) -> dict[str, object]:
    allowed = policy.event(
        {**_task_event([FLOW_RUN]), "id": OTHER, "occurred": "2026-11-29T20:00:00Z"}
        | {
            "payload": {
                "validated_state": {"type": state_type, "name": "x"},
                "task_run": {"name": "t", "task_key": "k", "dynamic_key": "0"},
            }
        }
    )
    assert allowed is not None
    return allowed.event


def test_only_events_prefects_recorder_can_record_pass() -> None:
    from gateway.prefect_api.routes import recordable

    assert recordable(_recordable_event("COMPLETED"))["resource"]["prefect.resource.id"] == f"prefect.task-run.{TASK}"
    with pytest.raises(ValueError):
        recordable(_recordable_event("BOGUS"))


def test_a_task_run_id_claimed_while_unknown_never_makes_a_flow_run_the_jobs() -> None:
    """A flow run's id is no task run's: claiming it as a new task run (Prefect knows no task run of
    that id) must not let the job act on the flow run it names."""
    import asyncio

    import httpx

    from gateway.prefect_api.relay import PrefectRelay

    def prefect(request: httpx.Request) -> httpx.Response:
        if request.url.path == f"/api/flow_runs/{OTHER}":
            return httpx.Response(200, json={"id": OTHER, "tags": ["job:someone-else"]})
        return httpx.Response(404, json={"detail": "not found"})

    async def attempt() -> None:
        relay = PrefectRelay("http://prefect/api")
        relay.client = httpx.AsyncClient(base_url="http://prefect/api/", transport=httpx.MockTransport(prefect))
        await relay.check_task_runs(JOB, {OTHER})  # unknown as a task run: the job may make it
        with pytest.raises(ApiError) as refused:
            await relay.check_flow_runs(JOB, {OTHER})
        assert refused.value.status == 403

    asyncio.run(attempt())
