from qiskit_serverless import save_result

import module_that_does_not_exist  # noqa: F401

save_result({"never": True})
