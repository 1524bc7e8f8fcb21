"""What a program's Prefect client may ask of Prefect through the gateway: its own job's runs only.

A program that defines and calls a Prefect flow talks to `/api/v1/prefect` with its job's token
(gateway/prefect_api/routes.py). This module holds the rule, as pure functions over paths and
bodies: which calls pass (`route`), what of each body reaches Prefect (the `*_body` functions), and
which events pass (`event`). A flow run a program creates carries `in-job:<job id>`, and that tag
is what makes a run the job's own: every call naming a run is checked against it, and every filter
is narrowed to it. Everything else is refused with 403.
"""

from __future__ import annotations

import re
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

# What of a run's create and update bodies reaches Prefect: never a deployment, a work pool or
# queue, job variables or infrastructure, which would make Prefect run something as someone else.
FLOW_RUN_FIELDS = {"name", "flow_id", "state", "parameters", "context", "parent_task_run_id", "empirical_policy"}
FLOW_RUN_FIELDS |= {"labels", "flow_version"}
FLOW_RUN_UPDATE_FIELDS = {"name", "flow_version", "empirical_policy", "parameters"}
TASK_RUN_FIELDS = {"id", "name", "flow_run_id", "task_key", "dynamic_key", "cache_key", "cache_expiration"}
TASK_RUN_FIELDS |= {"task_version", "empirical_policy", "task_inputs", "state", "labels"}
# An event a program's task run sends: which related resources stay on it.
EVENT_ROLES = {"flow-run", "task-run", "flow", "tag"}


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


def _tags(body: dict[str, Any], job_id: str | None) -> list[str]:
    tags = body.get("tags")
    kept = unreserved(tags) if isinstance(tags, list) else []
    return [*kept, in_job_tag(job_id)] if job_id is not None else kept


def labels(body: Any) -> dict[str, Any]:
    """A run's labels, less Prefect's own (`prefect.*`), which the server reads as facts about the run."""
    if body is None:
        return {}
    return {key: value for key, value in _object(body).items() if not key.startswith("prefect.")}


def flow_body(body: Any) -> dict[str, Any]:
    """A flow is a name shared by everyone: only the name goes (Prefect returns it if it exists)."""
    name = _object(body).get("name")
    if not isinstance(name, str):
        raise ValueError("A flow needs a name.")
    return {"name": name}


def flow_run_body(body: Any, job_id: str) -> dict[str, Any]:
    """A program's flow run: its own fields, the job's tag, and an idempotency key of the job's own
    (a key is unique per flow, and flows are shared, so a bare key could return another job's run)."""
    given = _object(body)
    kept = {key: value for key, value in given.items() if key in FLOW_RUN_FIELDS}
    kept["tags"] = _tags(given, job_id)
    if "labels" in kept:
        kept["labels"] = labels(kept["labels"])
    if isinstance(given.get("idempotency_key"), str):
        kept["idempotency_key"] = f"{job_id}:{given['idempotency_key']}"
    return kept


def flow_run_update_body(body: Any) -> dict[str, Any]:
    return {key: value for key, value in _object(body).items() if key in FLOW_RUN_UPDATE_FIELDS}


def task_run_body(body: Any) -> dict[str, Any]:
    given = _object(body)
    if not isinstance(given.get("flow_run_id"), str):
        raise PermissionError(REFUSED)
    kept = {key: value for key, value in given.items() if key in TASK_RUN_FIELDS}
    kept["tags"] = _tags(given, None)
    if "labels" in kept:
        kept["labels"] = labels(kept["labels"])
    return kept


def narrowed_filter(body: Any, job_id: str) -> dict[str, Any]:
    """A flow-run filter that can only match the job's own runs."""
    given = dict(_object(body)) if body is not None else {}
    runs = given.get("flow_runs")
    runs = dict(runs) if isinstance(runs, dict) else {}
    tags = runs.get("tags")
    tags = dict(tags) if isinstance(tags, dict) else {}
    wanted = tags.get("all_")
    tags["all_"] = [*(wanted if isinstance(wanted, list) else []), in_job_tag(job_id)]
    runs["tags"] = tags
    given["flow_runs"] = runs
    return given


def log_runs(body: Any) -> tuple[list[dict[str, Any]], set[str]]:
    """The log entries that belong to a flow run, and those runs (each must be the job's own). An
    entry of no flow run (a task called outside any flow) has nowhere to go in Prefect: it is left
    out (the program's output keeps it)."""
    if not isinstance(body, list) or not all(isinstance(entry, dict) for entry in body):
        raise ValueError("The body must be a list of log entries.")
    kept = [entry for entry in body if isinstance(entry.get("flow_run_id"), str)]
    return kept, {entry["flow_run_id"] for entry in kept}


def run_of(resource_id: Any, kind: str) -> str | None:
    prefix = f"prefect.{kind}."
    return resource_id.removeprefix(prefix) if isinstance(resource_id, str) and resource_id.startswith(prefix) else None


def event(message: Any) -> tuple[dict[str, Any], set[str]] | None:
    """A task run's state event as it may reach Prefect, and the flow runs it names (each must be
    the job's own); None for any other event. Related resources keep only the task's own kinds, and
    no reserved tag: a work-pool or `job:` resource would let an event pose as a job's run."""
    if not isinstance(message, dict) or not str(message.get("event", "")).startswith("prefect.task-run."):
        return None
    resource = message.get("resource")
    if not isinstance(resource, dict) or run_of(resource.get("prefect.resource.id"), "task-run") is None:
        return None
    related = message.get("related")
    kept, flow_runs = [], set()
    for each in related if isinstance(related, list) else []:
        if not isinstance(each, dict) or each.get("prefect.resource.role") not in EVENT_ROLES:
            continue
        resource_id = each.get("prefect.resource.id")
        if each["prefect.resource.role"] == "tag" and not unreserved([str(resource_id).removeprefix("prefect.tag.")]):
            continue
        flow_run = run_of(resource_id, "flow-run")
        if each["prefect.resource.role"] == "flow-run":
            if flow_run is None:
                continue
            flow_runs.add(flow_run)
        kept.append(each)
    if not flow_runs:
        return None  # a task outside any flow: Prefect records it nowhere the job could be told by
    return {**message, "related": kept}, flow_runs
