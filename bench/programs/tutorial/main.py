"""A reference-tutorial-sized program: a circuit transpiled and sampled on a fake backend."""

from qiskit import QuantumCircuit, transpile
from qiskit_ibm_runtime import SamplerV2
from qiskit_ibm_runtime.fake_provider import FakeManilaV2
from qiskit_serverless import get_arguments, save_result


def main(qubits: int) -> dict[str, int]:
    circuit = QuantumCircuit(qubits)
    circuit.h(0)
    for target in range(1, qubits):
        circuit.cx(0, target)
    circuit.measure_all()
    backend = FakeManilaV2()
    compiled = transpile(circuit, backend=backend, optimization_level=1, seed_transpiler=7)
    result = SamplerV2(mode=backend).run([compiled], shots=1000).result()
    return dict(result[0].data.meas.get_counts())


if __name__ == "__main__":
    save_result(main(**get_arguments()))
