from qiskit_serverless import get_arguments, save_result

save_result({"hello": get_arguments().get("name", "world")})
