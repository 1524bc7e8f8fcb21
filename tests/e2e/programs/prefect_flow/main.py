"""A program written as a Prefect flow: its tasks run on Ray through prefect-ray's RayTaskRunner.

Two task runs from `.map()` and one from `.submit()` (which fails its first attempt and is retried,
as `retries=1` asks); each reports the Ray worker and process it ran in. A cached task asked twice
for the same input runs once: the second run is Cached. The flow's return value is the job's result.
"""

import os

import ray
from prefect import flow, get_run_logger, runtime, task
from prefect.cache_policies import INPUTS
from prefect_ray import RayTaskRunner
from qiskit.circuit.random import random_circuit
from qiskit_serverless import get_arguments, save_result


def where() -> dict:
    worker = ray.get_runtime_context().get_worker_id()
    get_run_logger().info("task %s ran on Ray worker %s", runtime.task_run.name, worker)
    return {"pid": os.getpid(), "worker": worker, "task_run_id": runtime.task_run.id}


@task
def circuit_depth(seed: int) -> dict:
    return {"depth": random_circuit(3, 4, seed=seed).depth(), **where()}


@task(retries=1)
def second_try() -> dict:
    if runtime.task_run.run_count < 2:
        raise RuntimeError("the first attempt fails on purpose")
    return {"attempts": runtime.task_run.run_count, **where()}


@task(cache_policy=INPUTS, persist_result=True)
def square(value: int) -> int:
    return value * value


@flow(task_runner=RayTaskRunner())
def main(seeds: list[int]) -> dict:
    depths = circuit_depth.map(seeds)
    retried = second_try.submit()
    first = square.submit(7)
    first.wait()
    again = square.submit(7)
    again.wait()
    return {
        "cache": [first.state.name, again.state.name, again.result()],
        "depths": [future.result() for future in depths],
        "retried": retried.result(),
        "flow_run_id": runtime.flow_run.id,
        "program_pid": os.getpid(),
    }


save_result(main(**get_arguments()))
