"""The flow-authoring example in small: three circuits transpiled by Prefect tasks on the job's Ray."""

from prefect import flow, task
from prefect_ray import RayTaskRunner
from qiskit import transpile
from qiskit.circuit.random import random_circuit
from qiskit_serverless import get_arguments, save_result


@task
def depth(seed: int) -> int:
    return int(transpile(random_circuit(4, 4, seed=seed), basis_gates=["cx", "rz", "sx", "x"]).depth())


@flow(task_runner=RayTaskRunner())
def main(seeds: list[int]) -> list[int]:
    return [future.result() for future in depth.map(seeds)]


save_result(main(**get_arguments()))
