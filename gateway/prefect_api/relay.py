"""The gateway's side of a program's Prefect calls: checks each against its job (policy.py) and
passes it to the Prefect server with the platform's credentials, which programs never hold.

Which runs are a job's own is Prefect's to say (their `in-job:` tag); the relay only remembers
what it has already checked, so any gateway process answers any call.
"""

from __future__ import annotations

import base64
import logging
import uuid
from typing import Any

import httpx
from fastapi import Response
from fastapi.responses import JSONResponse
from prefect.settings import get_current_settings

from core.status import FINAL_STATE_TYPES
from core.tags import in_job_tag
from gateway.errors import ApiError
from gateway.prefect_api import policy

REMEMBERED = 10_000  # run ids known to be a job's own, per process
EVENT_BATCH = 100
PLACEHOLDER_TASK_KEY = "program-flow"  # the task run that shows a program's flow inside its job's run

log = logging.getLogger("qiskit_serverless.gateway")


def refused() -> ApiError:
    return ApiError(403, policy.REFUSED)


def _reply(upstream: httpx.Response) -> Any:
    try:
        return upstream.json()
    except ValueError:
        raise ApiError(502, "Prefect answered with something that is not JSON.") from None


def _object(upstream: httpx.Response) -> dict[str, Any]:
    reply = _reply(upstream)
    if not isinstance(reply, dict):
        raise ApiError(502, "Prefect answered with something unexpected.")
    return reply


class PrefectRelay:
    def __init__(self, api_url: str, headers: dict[str, str] | None = None) -> None:
        self.client = httpx.AsyncClient(base_url=api_url.rstrip("/") + "/", headers=headers or {}, timeout=30.0)
        # Ids already checked, each kind on its own (a flow-run id is no task run's): run id -> job id.
        self._flow_runs: dict[str, str] = {}  # found tagged with the job
        self._task_runs: dict[str, str] = {}  # in one of the job's flow runs, or claimed while Prefect knew none

    @classmethod
    def from_prefect_settings(cls, api_url: str) -> PrefectRelay:
        """With the credentials this process's Prefect settings hold (its profile)."""
        api = get_current_settings().api
        headers = {}
        if api.auth_string is not None:
            login = base64.b64encode(api.auth_string.get_secret_value().encode()).decode()
            headers["Authorization"] = f"Basic {login}"
        elif api.key is not None:
            headers["Authorization"] = f"Bearer {api.key.get_secret_value()}"
        return cls(api_url, headers)

    async def close(self) -> None:
        await self.client.aclose()

    async def _send(self, method: str, path: str, body: Any = None) -> httpx.Response:
        try:
            return await self.client.request(method, path, json=body)
        except httpx.HTTPError:
            raise ApiError(503, "Prefect is not reachable; try again.") from None

    @staticmethod
    def _answer(upstream: httpx.Response) -> Response:
        if upstream.status_code >= 500:  # Prefect's own failure, never passed on as the gateway's
            raise ApiError(502, "Prefect could not take this call.")
        return Response(upstream.content, upstream.status_code, media_type=upstream.headers.get("content-type"))

    @staticmethod
    def _remember(known: dict[str, str], run_id: str, job_id: str) -> None:
        if len(known) >= REMEMBERED:
            known.pop(next(iter(known)))
        known[run_id] = job_id

    async def flow_run(self, job_id: str, run_id: str) -> dict[str, Any]:
        """The job's own flow run, or 403 (also for a run that does not exist: nothing is told)."""
        upstream = await self._send("GET", f"flow_runs/{policy.run_id(run_id)}")
        run = _object(upstream) if upstream.status_code == 200 else {}
        if in_job_tag(job_id) not in (run.get("tags") or []):
            raise refused()
        self._remember(self._flow_runs, policy.run_id(run_id), job_id)
        return run

    async def check_flow_runs(self, job_id: str, run_ids: set[str]) -> None:
        for run_id in run_ids:
            if self._flow_runs.get(policy.run_id(run_id)) != job_id:
                await self.flow_run(job_id, run_id)

    async def task_run(self, job_id: str, task_run_id: str) -> dict[str, Any]:
        """The job's own task run (one in a flow run of its own), or 403."""
        upstream = await self._send("GET", f"task_runs/{policy.run_id(task_run_id)}")
        run = _object(upstream) if upstream.status_code == 200 else {}
        if not isinstance(run.get("flow_run_id"), str):
            raise refused()
        await self.check_flow_runs(job_id, {run["flow_run_id"]})
        self._remember(self._task_runs, policy.run_id(task_run_id), job_id)
        return run

    async def check_task_runs(self, job_id: str, task_run_ids: set[str]) -> None:
        """Task runs an event or a log line names: the job's own, or none Prefect knows yet (its first
        event makes it; task-run ids are random, so an unknown one is nobody else's)."""
        for task_run_id in map(policy.run_id, task_run_ids):
            if self._task_runs.get(task_run_id) == job_id:
                continue
            upstream = await self._send("GET", f"task_runs/{task_run_id}")
            if upstream.status_code == 404:
                self._remember(self._task_runs, task_run_id, job_id)
            else:
                await self.task_run(job_id, task_run_id)

    async def handle(self, call: policy.Call, job_id: str, job_run_id: str, body: Any) -> Response:
        """One allowed call (policy.route) of job `job_id`, whose own flow run is `job_run_id`."""
        try:
            return await self._handle(call, job_id, job_run_id, body)
        except ValueError as invalid:
            raise ApiError(400, str(invalid)) from None
        except PermissionError:
            raise refused() from None

    async def _handle(self, call: policy.Call, job_id: str, job_run_id: str, body: Any) -> Response:
        object_id = call.object_id or ""
        match call.kind:
            case "open":
                return self._answer(await self._send("GET", call.path.lstrip("/")))
            case "csrf":  # the gateway needs no CSRF token from a program; Prefect's own answer when off
                return JSONResponse({"message": "CSRF protection is disabled."}, status_code=422)
            case "result_storage":  # no server default: a program's results stay in its own storage
                return JSONResponse({"default_result_storage_block_id": None})
            case "read_flow":  # a flow is a name (events name it); it holds nothing of any run
                return self._answer(await self._send("GET", f"flows/{policy.run_id(object_id)}"))
            case "create_flow":
                return self._answer(await self._send("POST", "flows/", policy.flow_body(body)))
            case "create_flow_run":
                return await self._create_flow_run(job_id, job_run_id, policy.flow_run_body(body, job_id))
            case "filter_flow_runs":
                upstream = await self._send("POST", "flow_runs/filter", policy.narrowed_filter(body, job_id))
                if upstream.status_code != 200:
                    return self._answer(upstream)
                return JSONResponse(policy.own_runs(_reply(upstream), job_id))
            case "read_flow_run":
                return JSONResponse(await self.flow_run(job_id, object_id))
            case "update_flow_run":
                await self.check_flow_runs(job_id, {object_id})
                update = policy.flow_run_update_body(body)
                return self._answer(await self._send("PATCH", f"flow_runs/{object_id}", update))
            case "flow_run_labels":
                await self.check_flow_runs(job_id, {object_id})
                return self._answer(await self._send("PATCH", f"flow_runs/{object_id}/labels", policy.labels(body)))
            case "flow_run_state":
                run = await self.flow_run(job_id, object_id)
                upstream = await self._send("POST", f"flow_runs/{object_id}/set_state", policy.set_state_body(body))
                await self._settle_placeholder(run, job_run_id, upstream)
                return self._answer(upstream)
            case "create_task_run":
                task_run = policy.task_run_body(body)
                await self.check_flow_runs(job_id, {task_run["flow_run_id"]})
                return self._answer(await self._send("POST", "task_runs/", task_run))
            case "read_task_run":
                return JSONResponse(await self.task_run(job_id, object_id))
            case "task_run_state":
                await self.task_run(job_id, object_id)
                update = policy.set_state_body(body)
                return self._answer(await self._send("POST", f"task_runs/{object_id}/set_state", update))
            case "logs":
                entries, flow_runs, task_runs = policy.log_entries(body)
                await self.check_flow_runs(job_id, flow_runs)
                await self.check_task_runs(job_id, task_runs)
                if not entries:
                    return Response(status_code=201)
                return self._answer(await self._send("POST", "logs/", entries))
        raise refused()  # a kind policy.route names but this relay does not serve

    async def _create_flow_run(self, job_id: str, job_run_id: str, run: dict[str, Any]) -> Response:
        """A program's flow run. Inside a flow of the program (a subflow) its parent task run is the
        job's own; a flow the program calls at top level is shown inside the job's flow run, through a
        task run made there for it, as Prefect shows a subflow."""
        if "parent_task_run_id" in run:
            await self.task_run(job_id, run["parent_task_run_id"])
            upstream = await self._send("POST", "flow_runs/", run)
        else:
            placeholder = {
                "name": str(run.get("name") or "program flow"),
                "flow_run_id": job_run_id,
                "task_key": PLACEHOLDER_TASK_KEY,
                "dynamic_key": str(uuid.uuid4()),
                "state": {"type": "RUNNING", "name": "Running"},
            }
            made = await self._send("POST", "task_runs/", placeholder)
            if made.status_code >= 300:
                return self._answer(made)
            placeholder_id = _object(made).get("id")
            upstream = await self._send("POST", "flow_runs/", {**run, "parent_task_run_id": placeholder_id})
            created = _object(upstream) if upstream.status_code < 300 else {}
            if created.get("parent_task_run_id") != placeholder_id:  # refused, or an earlier run of its key
                await self._send("DELETE", f"task_runs/{placeholder_id}")
        if upstream.status_code < 300:
            made_run = _object(upstream)
            if in_job_tag(job_id) not in (made_run.get("tags") or []):
                raise refused()  # not the run it asked for (its key is the job's own, so never expected)
            self._remember(self._flow_runs, policy.run_id(made_run.get("id")), job_id)
        return self._answer(upstream)

    async def _settle_placeholder(self, run: dict[str, Any], job_run_id: str, upstream: httpx.Response) -> None:
        """A program's top-level flow run ended: its task run in the job's run ends the same way."""
        if upstream.status_code >= 300:
            return
        result = _object(upstream)
        state = result.get("state") if result.get("status") == "ACCEPT" else None
        parent = run.get("parent_task_run_id")
        if not isinstance(state, dict) or state.get("type") not in FINAL_STATE_TYPES or not isinstance(parent, str):
            return
        placeholder = await self._send("GET", f"task_runs/{policy.run_id(parent)}")
        if placeholder.status_code == 200 and _object(placeholder).get("flow_run_id") == job_run_id:
            ended = {"type": state["type"], "name": state.get("name"), "message": state.get("message")}
            await self._send("POST", f"task_runs/{parent}/set_state", {"state": ended, "force": True})

    async def send_events(self, events: list[dict[str, Any]]) -> None:
        """To Prefect in batches. Prefect refusing a batch (it checks every event) loses that batch
        alone; Prefect unreachable is a 503 for the caller to try again."""
        for start in range(0, len(events), EVENT_BATCH):
            batch = events[start : start + EVENT_BATCH]
            upstream = await self._send("POST", "events", batch)
            if upstream.status_code >= 500:
                raise ApiError(503, "Prefect did not take the events; try again.")
            if upstream.status_code >= 300:
                log.warning("Prefect refused %d events of a program: %s", len(batch), upstream.text[:300])
