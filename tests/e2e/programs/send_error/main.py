from qiskit_serverless import send_error

send_error(code=1000, message="calibration failed\n", exception="ValueError", args={"qubit": 3})
raise SystemExit(3)
