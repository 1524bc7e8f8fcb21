"""The same work as flow_program with plain Ray tasks: what Prefect adds inside a program."""

import ray
from qiskit import transpile
from qiskit.circuit.random import random_circuit
from qiskit_serverless import get_arguments, save_result


@ray.remote
def depth(seed: int) -> int:
    return int(transpile(random_circuit(4, 4, seed=seed), basis_gates=["cx", "rz", "sx", "x"]).depth())


ray.init()
save_result(ray.get([depth.remote(seed) for seed in get_arguments()["seeds"]]))
