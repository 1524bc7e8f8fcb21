"""Works for `seconds`, then saves how long it worked."""

import time

from qiskit_serverless import get_arguments, save_result

seconds = get_arguments()["seconds"]
print("started", flush=True)
time.sleep(seconds)
save_result({"worked": seconds})
