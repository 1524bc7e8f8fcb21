"""Prefect tasks that run the platform's programs, for flows of your own.

    from prefect import flow
    from flows.program_tasks import run_program

    @flow
    def pipeline() -> None:
        counts = run_program("sampler", {"shots": 1000}, host="http://127.0.0.1:8000", token="awesome_token")
        report = run_program("report", {"counts": counts})

Each call submits a job through the REST API (`POST /api/v1/programs/run`), follows it until it
ends, and returns its result; a job that fails or is stopped raises `ProgramRunFailed` with its
status and the end of its log, so Prefect's task retries apply. A task that gives its job up
(its flow run cancelled, the process interrupted, its `timeout` reached) stops the job first.
`host` and `token` default to `QS_GATEWAY_URL` and `QS_GATEWAY_TOKEN`. Arguments go as plain JSON
(qiskit objects need the qiskit-serverless client's encoding: serialize them yourself, or run the
client in your task).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

import httpx
from prefect import get_client, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import StateType
from prefect.context import TaskRunContext

TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}
FIRST_WAIT, LONGEST_WAIT = 0.2, 5.0  # poll fast while a job is young, then back off
LOG_TAIL_BYTES = 4000
UNREACHABLE_SECONDS = 120.0


class ProgramRunCancelled(RuntimeError):
    """The task's flow run was cancelled: its job was stopped."""


class ProgramRunFailed(RuntimeError):
    """The job ended FAILED or STOPPED."""

    def __init__(self, job_id: str, status: str, log_tail: str) -> None:
        super().__init__(f"Job {job_id} ended {status}. End of its log:\n{log_tail}")
        self.job_id = job_id
        self.status = status


@task(name="run-program", cache_policy=NO_CACHE, persist_result=False)
def run_program(
    title: str,
    arguments: dict[str, Any] | None = None,
    provider: str | None = None,
    host: str | None = None,
    token: str | None = None,
    timeout: float | None = None,
) -> Any:
    """Run a platform program as a job and return its result (what the program passed to save_result)."""
    base = (host or os.environ["QS_GATEWAY_URL"]).rstrip("/") + "/api/v1"
    headers = {"Authorization": f"Bearer {token or os.environ['QS_GATEWAY_TOKEN']}"}
    logger = get_run_logger()
    with httpx.Client(base_url=base, headers=headers, timeout=60) as api:
        body = {"title": title, "provider": provider, "arguments": json.dumps(arguments or {})}
        job_id = str(_ok(api.post("/programs/run/", json=body))["id"])
        logger.info("job %s of %s submitted", job_id, title)
        try:
            status = follow(api, job_id, timeout, _flow_run_cancelled(TaskRunContext.get()))
        except (ProgramRunCancelled, TimeoutError):
            _give_up(api, job_id, logger)  # nobody would collect it
            raise
        except Exception:
            raise  # the platform could not be asked: the job may well run on
        except BaseException:
            _give_up(api, job_id, logger)  # interrupted, or its process terminated
            raise
        if status != "SUCCEEDED":
            logs = str(_ok(api.get(f"/jobs/{job_id}/logs/"))["logs"])
            raise ProgramRunFailed(job_id, status, logs[-LOG_TAIL_BYTES:])
        saved = api.get(f"/jobs/{job_id}/result/")
        logger.info("job %s of %s succeeded", job_id, title)
        if saved.status_code == 204:
            return None  # the program saved no result
        return json.loads(_ok(saved)["result"] or "null")


def follow(
    api: httpx.Client, job_id: str, timeout: float | None = None, cancelled: Callable[[], bool] = lambda: False
) -> str:
    """Wait for the job's end, polling quickly at first and less often as it runs on; its status."""
    deadline = None if timeout is None else time.monotonic() + timeout
    wait = FIRST_WAIT
    while (status := _status(api, job_id)) not in TERMINAL:
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {status} after {timeout} s")
        if cancelled():
            raise ProgramRunCancelled(f"The flow run was cancelled while job {job_id} was {status}.")
        time.sleep(wait)
        wait = min(LONGEST_WAIT, wait * 1.5)
    return status


def _status(api: httpx.Client, job_id: str) -> str:
    """The job's status; a gateway that cannot answer for a while (restarting, behind a load
    balancer that moves) is asked again, for up to UNREACHABLE_SECONDS."""
    deadline = time.monotonic() + UNREACHABLE_SECONDS
    while True:
        try:
            response = api.get(f"/jobs/{job_id}/")
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
        else:
            if response.status_code < 500 or time.monotonic() > deadline:
                return str(_ok(response)["status"])
        time.sleep(1)


def _flow_run_cancelled(context: TaskRunContext | None) -> Callable[[], bool]:
    """Whether the task's flow run is being cancelled, asked of Prefect. A submitted task runs in a
    worker thread that Prefect's cancellation (which interrupts the flow's main thread, or kills its
    process) never reaches, and the flow waits for it: it has to look."""
    flow_run_id = context.task_run.flow_run_id if context is not None else None
    if flow_run_id is None:
        return lambda: False

    def cancelled() -> bool:
        try:
            with get_client(sync_client=True) as client:
                state = client.read_flow_run(flow_run_id).state
        except Exception:
            return False  # Prefect could not say: asked again at the next poll
        return state is not None and state.type in (StateType.CANCELLING, StateType.CANCELLED)

    return cancelled


def _give_up(api: httpx.Client, job_id: str, logger: Any) -> None:
    try:
        _ok(api.post(f"/jobs/{job_id}/stop/", json={}))
        logger.warning("job %s stopped: its task gave it up", job_id)
    except Exception as error:  # the task's own ending matters more
        logger.error("could not stop job %s: %s", job_id, error)


def _ok(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        try:
            message = response.json().get("message", response.text)
        except ValueError:
            message = response.text
        raise RuntimeError(f"{response.request.method} {response.request.url.path}: {response.status_code} {message}")
    return response.json()
