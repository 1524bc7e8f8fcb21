"""The `run_program` flow: one flow run per job, the program itself running on Ray.

Every program's deployment runs this flow with the program's own parameter, `arguments`. A flow
run is a job: the gateway records a job (row, artifact snapshot, arguments file, spec with the
callback token) and makes its run, tagged `job:<job id>`; it adopts the runs started in Prefect
(UI, CLI, schedules, automations) within about a second, as jobs with the run's own id.
"""

from __future__ import annotations

import re
import time
from typing import Any, cast
from uuid import UUID

import ray
from prefect import Flow, flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.context import get_run_context
from prefect.states import Cancelled, Crashed, State
from prefect_ray.context import remote_options
from prefect_ray.task_runners import PrefectRayFuture, RayTaskRunner

from blocks.storage import platform_storage
from core import layout
from core.job_log import SUPERVISOR_LOST, WORKER_LOST, node_lost, run_time_exceeded
from core.job_spec import JobSpec
from core.status import FAILED, STOPPED, SUCCEEDED
from core.tags import job_of
from flows import cancellation, node, supervisor
from flows.job_record import settle_job
from flows.log_sink import PrefectLogMirror
from flows.node import NodeRuntime
from flows.program_flows import end_program_flows_later
from flows.program_process import Attempt, RunTimeExceeded, run_program_process
from flows.supervisor import SupervisedRayTaskRunner

# How long a run started in Prefect waits for the gateway to adopt it as a job.
ADOPTION_SECONDS = 30.0


class ProgramFailed(RuntimeError):
    """The program exited with a non-zero code."""


class ProgramLost(RuntimeError):
    """The program died with its Ray node, worker or supervisor, not by its own doing."""


# What ends a program task from outside: its node lost, its worker process killed, its supervisor gone.
LOST = (
    ray.exceptions.NodeDiedError,
    ray.exceptions.WorkerCrashedError,
    ray.exceptions.OwnerDiedError,
    ray.exceptions.OutOfMemoryError,
)
RAY_NODE = re.compile(r"Node IP: (?P<ip>[^,\s]+), node ID: (?P<id>[0-9a-f]+)")


def lost_program(error: BaseException, task_run_id: UUID) -> str:
    """Why the job failed, naming the lost node; its task run, which nobody will end, is Crashed."""
    node = RAY_NODE.search(str(error))
    if node is not None:
        why = node_lost(node["id"], node["ip"])
    else:
        why = SUPERVISOR_LOST if isinstance(error, ray.exceptions.OwnerDiedError) else WORKER_LOST
    try:
        with get_client(sync_client=True) as client:
            client.set_task_run_state(task_run_id, Crashed(message=why), force=True)
    except Exception:
        get_run_logger().exception("could not close the task run of the lost program")
    return why


class NotAJob(RuntimeError):
    """No job stands behind this flow run."""


def wait_for_job(runtime: NodeRuntime, job_id: str) -> JobSpec:
    storage = platform_storage(runtime.storage_block)
    deadline = time.monotonic() + ADOPTION_SECONDS
    while True:
        try:
            return JobSpec.load(storage, job_id)
        except (FileNotFoundError, ValueError):  # not there yet, or read while being written
            if time.monotonic() > deadline:
                raise NotAJob(
                    f"No job was made of flow run {job_id} within {ADOPTION_SECONDS:.0f} s: is the gateway running?"
                ) from None
            time.sleep(0.1)


@task(name="execute-program", persist_result=False, cache_policy=NO_CACHE, log_prints=False)
def execute_program(job_id: str, runtime: NodeRuntime, attempt: Attempt) -> int:
    storage = platform_storage(runtime.storage_block)
    spec = JobSpec.load(storage, job_id)
    if spec.resources:  # where a job that asked for a node group's resources landed
        context = ray.get_runtime_context()
        get_run_logger().info("On Ray node %s with %s", context.get_node_id(), context.get_assigned_resources())
    mirror = PrefectLogMirror(get_run_logger(), runtime.prefect_log_lines)
    return run_program_process(spec, storage, runtime, mirror, attempt)


# No address here: the executor gives the flow its cluster's task runner (`for_runtime`); a
# flow run started by another Prefect worker connects where RAY_ADDRESS points.
@flow(name="run_program", task_runner=RayTaskRunner(), persist_result=False, validate_parameters=True)
def run_program(arguments: dict[str, Any] | None = None) -> State | None:
    """Run a job's program to its end: exit 0 completes, anything else fails, a stop cancels.

    `arguments` is what the program's `get_arguments()` returns; the gateway has written it to the
    job's arguments file, which the program reads.
    """
    runtime = node.current()
    flow_run = get_run_context().flow_run  # type: ignore[union-attr]
    assert flow_run is not None
    flow_run_id = str(flow_run.id)
    job_id = job_of(flow_run.tags) or flow_run_id
    # Prefect re-reads the run for each attempt (flow retries), so run_count is this attempt's number.
    attempt = Attempt(max(1, flow_run.run_count), (flow_run.empirical_policy.retries or 0) + 1)
    spec = wait_for_job(runtime, job_id)
    if (adopted := supervisor.adopted_from()) is not None:
        get_run_logger().info("Adopted after its executor stopped: the program ran on under %s.", adopted)
    exit_code: int | None = None
    timed_out = False
    try:
        if cancellation.requested(flow_run_id):  # stopped between its claim and now (deployments/executor.py)
            return Cancelled(message=cancellation.reason(flow_run_id))
        storage = platform_storage(runtime.storage_block)  # first: nothing may fail between submit and register
        copy_back = layout.job_copy_back(job_id)
        with remote_options(num_cpus=runtime.job_num_cpus, resources=spec.resources or None):
            future = cast(PrefectRayFuture[int], execute_program.submit(job_id, runtime, attempt))
        task = cancellation.Task(
            future.wrapped_future, lambda: storage.get_bytes(copy_back), runtime.stop_grace_seconds
        )
        cancellation.register(flow_run_id, task)
        try:
            exit_code = future.result()
        except BaseException as error:
            if cancellation.requested(flow_run_id):
                return Cancelled(message=cancellation.reason(flow_run_id))
            if isinstance(error, RunTimeExceeded):  # the task stopped the program and kept what it wrote
                timed_out = True
                return Cancelled(message=run_time_exceeded(runtime.max_run_seconds))
            if isinstance(error, LOST):
                raise ProgramLost(lost_program(error, future.task_run_id)) from None
            raise
        if cancellation.requested(flow_run_id):
            return Cancelled(message=cancellation.reason(flow_run_id))
        if exit_code != 0:
            raise ProgramFailed(f"Program exited with code {exit_code}.")
        return None
    finally:
        stopped = cancellation.requested(flow_run_id) or timed_out
        cancellation.unregister(flow_run_id)
        if exit_code == 0 or attempt.is_last or stopped:
            outcome = STOPPED if stopped else SUCCEEDED if exit_code == 0 else FAILED
            settle_job(platform_storage(runtime.storage_block), flow_run, job_id, outcome)
            end_program_flows_later(job_id, flow_run_id, stopped)


def for_runtime(runtime: NodeRuntime, supervisor: str) -> Flow[[dict[str, Any] | None], State | None]:
    """The flow as the executor runs it: its task runner on the node's Ray cluster, the program
    tasks held by the executor's supervisor (flows/supervisor.py)."""
    return run_program.with_options(task_runner=SupervisedRayTaskRunner(runtime.ray_cluster, supervisor))
