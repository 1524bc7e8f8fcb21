import module_that_does_not_exist  # noqa: F401
from qiskit_serverless import save_result

save_result({"never": True})
