"""The job's record on its flow run: a markdown artifact (the run's Artifacts tab in the Prefect UI)
that ties the run to its job: id, function, author, how it ended and where its result and logs are."""

from __future__ import annotations

import logging
import threading

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import ArtifactCreate
from prefect.client.schemas.objects import FlowRun

from core.job_spec import JobSpec
from core.tags import runner_of

log = logging.getLogger("qiskit_serverless.executor")


def job_record(flow_run: FlowRun, spec: JobSpec, status: str) -> str:
    api = f"{spec.env.get('ENV_JOB_GATEWAY_HOST', '')}/api/v1/jobs/{spec.job_id}"
    return (
        f"### Job `{spec.job_id}`\n\n"
        "| | |\n|---|---|\n"
        f"| Function | `{spec.program_title}` |\n"
        f"| Author | `{runner_of(flow_run.tags) or 'unknown'}` |\n"
        f"| Status | **{status}** |\n"
        f"| Result | `GET {api}/result` (stored at `{spec.results_key}`) |\n"
        f"| Logs | `GET {api}/logs` |\n"
    )


def publish_job_record(flow_run: FlowRun, spec: JobSpec, status: str) -> None:
    """From a thread of its own: the record is for people, and the job's end does not wait for it."""
    artifact = ArtifactCreate(
        key=f"job-{spec.job_id}",
        type="markdown",
        description=f"Job {spec.job_id} of {spec.program_title}",
        data=job_record(flow_run, spec, status),
        flow_run_id=flow_run.id,
    )

    def publish() -> None:
        try:
            with get_client(sync_client=True) as client:
                client.create_artifact(artifact)
        except Exception:
            log.exception("could not record job %s on its flow run", spec.job_id)

    threading.Thread(target=publish, name=f"record-{spec.job_id[:8]}", daemon=True).start()
