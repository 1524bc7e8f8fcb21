"""The flow runs a program made (flows it called, recorded through the gateway's Prefect API for
programs with the tag `in-job:<job id>`) end with its job.

A program that is stopped or fails in the middle of a flow (or leaves one behind in a thread)
never reports that flow's end; without this, the Prefect UI would show it running forever. Those
runs, and the task runs that show them in the job's flow run, end Cancelled (a stop) or Crashed.
"""

from __future__ import annotations

import logging
import threading
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.states import Cancelled, Crashed, State

from core.status import FINAL_STATE_TYPES
from core.tags import in_job_tag

ENDED_WITH_JOB = "The job's program ended before this flow run did."
MOST = 200  # a program that left more unfinished flow runs than this has the rest left as they are


log = logging.getLogger("qiskit_serverless.executor")


def end_program_flows_later(job_id: str, job_run_id: str, stopped: bool) -> None:
    """In the background: nothing on a job's way to its end waits for it (but the executor's exit
    does, and so does its hand-over on SIGTERM, for a while)."""

    def end() -> None:
        try:
            end_program_flows(job_id, job_run_id, stopped)
        except Exception:  # the job's outcome stands; only the UI's view of its flows is stale
            log.exception("could not end the flow runs of job %s's program", job_id)

    threading.Thread(target=end, name=f"end-flows-{job_id[:8]}").start()


def end_program_flows(job_id: str, job_run_id: str, stopped: bool) -> None:
    """End the job's unfinished program flow runs."""
    unfinished = FlowRunFilter(
        tags=FlowRunFilterTags(all_=[in_job_tag(job_id)]),
        state=FlowRunFilterState(type=FlowRunFilterStateType(not_any_=list(FINAL_STATE_TYPES))),
    )
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=unfinished, limit=MOST)
        for run in runs:
            ended: State = Cancelled(message=ENDED_WITH_JOB) if stopped else Crashed(message=ENDED_WITH_JOB)
            client.set_flow_run_state(run.id, ended, force=True)
            if run.parent_task_run_id is None:
                continue
            parent = client.read_task_run(run.parent_task_run_id)
            if parent.flow_run_id == UUID(job_run_id):  # shown in the job's run: it ends the same way
                client.set_task_run_state(parent.id, ended.model_copy(), force=True)
