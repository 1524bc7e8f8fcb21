import time

from lib.bell import counts_of
from qiskit_serverless import get_arguments, get_logger, get_provider_logger, save_result

arguments = get_arguments()
circuit = arguments["circuit"]
print("DELAY STARTS", flush=True)
get_logger().info("public: circuit has %d qubits", circuit.num_qubits)
get_provider_logger().info("private: provider detail")
time.sleep(6)
save_result({"qubits": circuit.num_qubits, "ops": counts_of(circuit), "name": arguments["name"]})
print("DELAY ENDS")
print("the last line")
