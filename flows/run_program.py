"""The `run_program` flow: one flow run per job, the program itself running on Ray."""

from __future__ import annotations

from typing import cast

from prefect import Flow, flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.context import get_run_context
from prefect.states import Cancelled, State
from prefect_ray.context import remote_options
from prefect_ray.task_runners import PrefectRayFuture, RayTaskRunner

from blocks.storage import platform_storage
from core.job_log import STOPPED_MESSAGE
from core.job_spec import JobSpec
from flows import cancellation, node
from flows.node import NodeRuntime
from flows.program_process import PrefectLogMirror, run_program_process


class ProgramFailed(RuntimeError):
    """The program exited with a non-zero code."""


@task(name="execute-program", persist_result=False, cache_policy=NO_CACHE, log_prints=False)
def execute_program(job_id: str, runtime: NodeRuntime) -> int:
    storage = platform_storage(runtime.storage_block)
    spec = JobSpec.load(storage, job_id)
    spec.forget_secrets(storage)
    mirror = PrefectLogMirror(get_run_logger(), runtime.prefect_log_lines)
    return run_program_process(spec, storage, runtime, mirror)


# No address here: the executor gives the flow its cluster's task runner (`for_runtime`); a
# flow run started by another Prefect worker connects where RAY_ADDRESS points.
@flow(name="run_program", task_runner=RayTaskRunner(), persist_result=False, validate_parameters=True)
def run_program(job_id: str) -> State | None:
    """Run a job's program to its end: exit 0 completes, anything else fails, a stop cancels."""
    runtime = node.current()
    flow_run_id = str(get_run_context().flow_run.id)  # type: ignore[union-attr]
    with remote_options(num_cpus=runtime.job_num_cpus):
        future = cast(PrefectRayFuture[int], execute_program.submit(job_id, runtime))
    cancellation.register(flow_run_id, future.wrapped_future)
    try:
        exit_code = future.result()
    except BaseException:
        if cancellation.requested(flow_run_id):
            return Cancelled(message=STOPPED_MESSAGE)
        raise
    finally:
        stopped = cancellation.requested(flow_run_id)
        cancellation.unregister(flow_run_id)
    if stopped:
        return Cancelled(message=STOPPED_MESSAGE)
    if exit_code != 0:
        raise ProgramFailed(f"Program exited with code {exit_code}.")
    return None


def for_runtime(runtime: NodeRuntime) -> Flow[[str], State | None]:
    """The flow as the executor runs it: its task runner on the node's Ray cluster."""
    return run_program.with_options(task_runner=RayTaskRunner(address=runtime.ray_cluster))
