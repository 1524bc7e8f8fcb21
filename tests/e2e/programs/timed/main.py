"""Report when it started and ended (wall clock), with a pause between."""

import time

from qiskit_serverless import get_arguments, save_result

started = time.time()
time.sleep(get_arguments().get("seconds", 2))
save_result({"started": started, "ended": time.time()})
