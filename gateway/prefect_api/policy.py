"""What a program's Prefect client may ask of Prefect through the gateway: its own job's runs only.

A program that defines and calls a Prefect flow talks to `/api/v1/prefect` with its job's token
(gateway/prefect_api/routes.py). This module holds the rule, as pure functions over paths and
bodies: which calls pass (`route`), what of each body reaches Prefect (the `*_body` functions, all
allow-lists), and which events pass (`event`). A flow run a program creates carries
`in-job:<job id>`, and that tag is what makes a run the job's own: every call naming a run is
checked against it (relay.py), and every filter is narrowed to it. Everything else is refused (403).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from core.tags import in_job_tag, unreserved

REFUSED = "A program's Prefect client may only create and follow its own job's flow and task runs."
_ID = r"(?P<id>[0-9a-fA-F-]{36})"

# (method, path after /api/v1/prefect, what it is). Paths come without their trailing slash.
ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = tuple(
    (method, re.compile(pattern), kind)
    for method, pattern, kind in (
        ("GET", r"/admin/version|/health|/hello", "open"),
        ("GET", r"/csrf-token", "csrf"),
        ("GET", r"/admin/storage", "result_storage"),
        ("POST", r"/flows", "create_flow"),
        ("GET", rf"/flows/{_ID}", "read_flow"),
        ("POST", r"/flow_runs", "create_flow_run"),
        ("POST", r"/flow_runs/filter", "filter_flow_runs"),
        ("GET", rf"/flow_runs/{_ID}", "read_flow_run"),
        ("PATCH", rf"/flow_runs/{_ID}", "update_flow_run"),
        ("PATCH", rf"/flow_runs/{_ID}/labels", "flow_run_labels"),
        ("POST", rf"/flow_runs/{_ID}/set_state", "flow_run_state"),
        ("POST", r"/task_runs", "create_task_run"),
        ("GET", rf"/task_runs/{_ID}", "read_task_run"),
        ("POST", rf"/task_runs/{_ID}/set_state", "task_run_state"),
        ("POST", r"/logs", "logs"),
    )
)

# What of each body reaches Prefect. Never a deployment, work pool or queue, job variables or
# infrastructure (Prefect would run something as someone else), nor an id that names a run the
# checks did not see.
FLOW_RUN_FIELDS = {"name", "flow_id", "parameters", "context", "empirical_policy", "flow_version"}
FLOW_RUN_UPDATE_FIELDS = {"name", "flow_version", "empirical_policy", "parameters"}
TASK_RUN_FIELDS = {"name", "task_key", "dynamic_key", "task_version", "empirical_policy", "task_inputs"}
TASK_RUN_EVENT_FIELDS = TASK_RUN_FIELDS | {"run_count", "flow_run_run_count", "total_run_time"}
TASK_RUN_EVENT_FIELDS |= {"expected_start_time", "start_time", "end_time"}
# A state's data (it may ask Prefect for an artifact under any key) and most of its details (cache
# keys shared by every job, other runs' ids) stay out.
STATE_FIELDS = {"type", "name", "message", "timestamp"}
STATE_DETAILS = {"scheduled_time", "retriable", "untrackable_result"}
# An event of a program's task run: the labels of its resource, and which related resources stay on it.
EVENT_RESOURCE_LABELS = {"prefect.resource.id", "prefect.resource.name", "prefect.run-count", "prefect.state-message"}
EVENT_RESOURCE_LABELS |= {"prefect.state-name", "prefect.state-timestamp", "prefect.state-type"}
EVENT_ROLES = {"flow-run", "flow", "tag"}


@dataclass(frozen=True)
class Call:
    kind: str
    path: str
    object_id: str | None = None  # the flow, flow run or task run the path names


def route(method: str, path: str) -> Call | None:
    """What the call is, or None when a program may not make it."""
    for allowed, pattern, kind in ROUTES:
        found = pattern.fullmatch(path) if allowed == method else None
        if found is not None:
            return Call(kind, path, found.groupdict().get("id"))
    return None


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ValueError("The body must be a JSON object.")
    return body


def run_id(value: Any) -> str:
    """A run's id as Prefect writes it; anything else is refused before it reaches a URL or a check."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise ValueError("Run ids must be UUIDs.") from None


def _kept(body: dict[str, Any], fields: set[str]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key in fields}


def _tags(body: dict[str, Any], job_id: str | None) -> list[str]:
    tags = body.get("tags")
    kept = unreserved(tags) if isinstance(tags, list) else []
    return [*kept, in_job_tag(job_id)] if job_id is not None else kept


def labels(body: Any) -> dict[str, Any]:
    """A run's labels, less Prefect's own (`prefect.*`), which the server reads as facts about the run."""
    if body is None:
        return {}
    return {key: value for key, value in _object(body).items() if not key.startswith("prefect.")}


def state(body: Any) -> dict[str, Any]:
    given = _object(body)
    kept = _kept(given, STATE_FIELDS)
    details = given.get("state_details")
    kept["state_details"] = _kept(details, STATE_DETAILS) if isinstance(details, dict) else {}
    return kept


def set_state_body(body: Any) -> dict[str, Any]:
    given = _object(body)
    return {"state": state(given.get("state")), "force": given.get("force") is True}


def flow_body(body: Any) -> dict[str, Any]:
    """A flow is a name shared by everyone: only the name goes (Prefect returns it if it exists)."""
    name = _object(body).get("name")
    if not isinstance(name, str):
        raise ValueError("A flow needs a name.")
    return {"name": name}


def flow_run_body(body: Any, job_id: str) -> dict[str, Any]:
    """A program's flow run: its own fields, the job's tag, and an idempotency key of the job's own
    (a key is unique per flow, and flows are shared, so a bare key could return another job's run).
    Its parent task run, if any, is for the relay to check."""
    given = _object(body)
    kept = _kept(given, FLOW_RUN_FIELDS)
    kept["flow_id"] = run_id(given.get("flow_id"))
    kept["tags"] = _tags(given, job_id)
    kept["labels"] = labels(given.get("labels"))
    if given.get("state") is not None:
        kept["state"] = state(given["state"])
    if given.get("parent_task_run_id") is not None:
        kept["parent_task_run_id"] = run_id(given["parent_task_run_id"])
    if isinstance(given.get("idempotency_key"), str):
        kept["idempotency_key"] = f"{job_id}:{given['idempotency_key']}"
    return kept


def flow_run_update_body(body: Any) -> dict[str, Any]:
    return _kept(_object(body), FLOW_RUN_UPDATE_FIELDS)


def task_run_body(body: Any) -> dict[str, Any]:
    """A task run made in a flow run (Prefect makes one to stand for a subflow); the relay checks
    the flow run. Its id is Prefect's to give."""
    given = _object(body)
    if given.get("flow_run_id") is None:
        raise PermissionError(REFUSED)
    kept = _kept(given, TASK_RUN_FIELDS)
    kept["flow_run_id"] = run_id(given["flow_run_id"])
    kept["tags"] = _tags(given, None)
    kept["labels"] = labels(given.get("labels"))
    if given.get("state") is not None:
        kept["state"] = state(given["state"])
    return kept


def narrowed_filter(body: Any, job_id: str) -> dict[str, Any]:
    """A flow-run filter that can only match the job's own runs: its criteria are combined with AND
    and its tags must include the job's (an `or_` operator would otherwise widen it to every run)."""
    given = dict(_object(body)) if body is not None else {}
    runs = given.get("flow_runs")
    runs = dict(runs) if isinstance(runs, dict) else {}
    tags = runs.get("tags")
    wanted = tags.get("all_") if isinstance(tags, dict) else None
    runs["tags"] = {"operator": "and_", "all_": [*(wanted if isinstance(wanted, list) else []), in_job_tag(job_id)]}
    runs["operator"] = "and_"
    given["flow_runs"] = runs
    return given


def own_runs(runs: Any, job_id: str) -> list[Any]:
    """What a filter returned, once more only the job's runs."""
    mark = in_job_tag(job_id)
    listed = runs if isinstance(runs, list) else []
    return [run for run in listed if isinstance(run, dict) and mark in (run.get("tags") or [])]


def log_entries(body: Any) -> tuple[list[dict[str, Any]], set[str], set[str]]:
    """The log entries that belong to a flow run, and the flow runs and task runs they name (each
    must be the job's own). An entry of no flow run (a task called outside any flow) has nowhere to
    go in Prefect: it is left out (the program's output keeps it)."""
    if not isinstance(body, list) or not all(isinstance(entry, dict) for entry in body):
        raise ValueError("The body must be a list of log entries.")
    kept = []
    for entry in body:
        if entry.get("flow_run_id") is None:
            continue
        entry = {**entry, "flow_run_id": run_id(entry["flow_run_id"])}
        if entry.get("task_run_id") is not None:
            entry["task_run_id"] = run_id(entry["task_run_id"])
        kept.append(entry)
    task_runs = {entry["task_run_id"] for entry in kept if entry.get("task_run_id")}
    return kept, {entry["flow_run_id"] for entry in kept}, task_runs


def _prefect_id(resource_id: Any, kind: str) -> str | None:
    prefix = f"prefect.{kind}."
    if not isinstance(resource_id, str) or not resource_id.startswith(prefix):
        return None
    try:
        return run_id(resource_id.removeprefix(prefix))
    except ValueError:
        return None


@dataclass(frozen=True)
class TaskRunEvent:
    """A task run's state event as it may reach Prefect, and the runs it names (relay.py checks them)."""

    event: dict[str, Any]
    task_run_id: str
    flow_run_id: str


def event(message: Any) -> TaskRunEvent | None:
    """A task run's state event rebuilt from what may pass; None for any other event.

    Prefect's task-run recorder takes the task run's id from the resource, its flow run from the one
    related `flow-run` resource, and everything else from the payload, where an `id` or a
    `flow_run_id` would override both: so the payload is rebuilt from allowed fields only. Related
    resources keep only the flow run, the flow and unreserved tags, so no event can pose as a job's
    run to the gateway's status feed (which reads work-pool and `job:` resources)."""
    if not isinstance(message, dict) or not str(message.get("event", "")).startswith("prefect.task-run."):
        return None
    resource = message.get("resource")
    payload = message.get("payload")
    if not isinstance(resource, dict) or not isinstance(payload, dict):
        return None
    task_run_id = _prefect_id(resource.get("prefect.resource.id"), "task-run")
    related = message.get("related")
    kept, flow_runs = [], []
    for each in related if isinstance(related, list) else []:
        role = each.get("prefect.resource.role") if isinstance(each, dict) else None
        if role not in EVENT_ROLES:
            continue
        resource_id = str(each.get("prefect.resource.id"))
        if role == "tag" and not unreserved([resource_id.removeprefix("prefect.tag.")]):
            continue
        if role == "flow-run":
            flow_runs.append(_prefect_id(resource_id, "flow-run"))
        kept.append(each)
    if task_run_id is None or len(flow_runs) != 1 or flow_runs[0] is None:
        return None  # no flow run (a task outside any flow) or several: nothing the job could own
    task_run = payload.get("task_run")
    task_run = task_run if isinstance(task_run, dict) else {}
    validated = payload.get("validated_state")
    if not isinstance(validated, dict):
        return None
    initial = payload.get("initial_state")
    rebuilt = {
        "intended": payload.get("intended") if isinstance(payload.get("intended"), dict) else {},
        "initial_state": state(initial) if isinstance(initial, dict) else None,
        "validated_state": {**state(validated), "data": None},
        "task_run": {
            **_kept(task_run, TASK_RUN_EVENT_FIELDS),
            "tags": _tags(task_run, None),
            "labels": labels(task_run.get("labels") if isinstance(task_run.get("labels"), dict) else None),
        },
    }
    allowed = {
        **_kept(message, {"occurred", "event", "id"}),
        "resource": {**_kept(resource, EVENT_RESOURCE_LABELS), "prefect.orchestration": "client"},
        "related": kept,
        "payload": rebuilt,
        "follows": None,
    }
    if _has_nul(allowed):  # PostgreSQL refuses it, and with it the batch of every job's events
        return None
    return TaskRunEvent(allowed, task_run_id, flow_runs[0])


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False
