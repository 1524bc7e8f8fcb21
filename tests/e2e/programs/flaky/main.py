"""Fails on its first attempt, succeeds on the next (ENV_JOB_ATTEMPT is the attempt's number)."""

import os

from qiskit_serverless import save_result

attempt = int(os.environ["ENV_JOB_ATTEMPT"])
print(f"attempt {attempt} running")
if attempt == 1:
    raise SystemExit("first attempt fails")
save_result({"attempt": attempt})
