"""The reference "distributed workloads" tutorial, in small: fan circuits out to Ray tasks that take
and return qiskit objects, and gather the transpiled circuits."""

import ray
from qiskit import QuantumCircuit, transpile
from qiskit.circuit.random import random_circuit
from qiskit_serverless import get_arguments, save_result


@ray.remote
def transpile_remote(circuit: QuantumCircuit) -> QuantumCircuit:
    return transpile(circuit, basis_gates=["cx", "rz", "sx", "x"], optimization_level=1, seed_transpiler=3)


count = get_arguments()["circuits"]
circuits = [random_circuit(3, 3, seed=seed, measure=True) for seed in range(count)]
ray.init()
transpiled = ray.get([transpile_remote.remote(circuit) for circuit in circuits])
save_result(
    {
        "count": len(transpiled),
        "basis": sorted({instruction.operation.name for circuit in transpiled for instruction in circuit.data}),
    }
)
