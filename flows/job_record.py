"""What happens once no attempt of a job follows: its token leaves the stored spec, and its flow run
gets the job's record, a markdown artifact (the run's Artifacts tab in the Prefect UI) that ties the
run to its job: id, function, author, how it ended and where its result and logs are."""

from __future__ import annotations

import logging
import threading

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import ArtifactCreate
from prefect.client.schemas.objects import FlowRun

from core.job_spec import JobSpec
from core.storage import Storage
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


def settle_job(storage: Storage, flow_run: FlowRun, job_id: str, status: str) -> None:
    """In a thread of its own: the job's end (its terminal state) does not wait for this. The token
    stays valid until that state anyway (docs/architecture.md, Tokens)."""

    def settle() -> None:
        try:
            spec = JobSpec.load(storage, job_id)
            spec.forget_secrets(storage)
            artifact = ArtifactCreate(
                key=f"job-{spec.job_id}",
                type="markdown",
                description=f"Job {spec.job_id} of {spec.program_title}",
                data=job_record(flow_run, spec, status),
                flow_run_id=flow_run.id,
            )
            with get_client(sync_client=True) as client:
                client.create_artifact(artifact)
        except Exception:
            log.exception("could not settle job %s", job_id)

    threading.Thread(target=settle, name=f"settle-{job_id[:8]}", daemon=True).start()
