"""Anchor: the same hello-world program submitted as a plain Ray job (Ray's Jobs API, no Prefect, no
gateway) to the stack's Ray cluster. Runs in the platform environment with the cluster's token path in
RAY_AUTH_TOKEN_PATH; prints one JSON line: {"to_running": [...], "to_done": [...]}.
"""

from __future__ import annotations

import json
import sys
import time

from ray.job_submission import JobStatus, JobSubmissionClient

# The hello program without save_result's call to a gateway (there is none here).
HELLO = "from qiskit_serverless import get_arguments, save_result; print('hello', get_arguments())"


def main() -> None:
    dashboard, python, runs, arguments = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    client = JobSubmissionClient(dashboard)
    to_running: list[float] = []
    to_done: list[float] = []
    for _ in range(runs):
        start = time.monotonic()
        job = client.submit_job(
            entrypoint=f'{python} -c "{HELLO}"', runtime_env={"env_vars": {"ARGUMENTS_PATH": arguments}}
        )
        running = None
        while (status := client.get_job_status(job)) not in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
            if status == JobStatus.RUNNING and running is None:
                running = time.monotonic() - start
            time.sleep(0.01)
        assert status == JobStatus.SUCCEEDED, client.get_job_logs(job)
        to_done.append(time.monotonic() - start)
        to_running.append(running if running is not None else to_done[-1])
    print(json.dumps({"to_running": to_running, "to_done": to_done}))


if __name__ == "__main__":
    main()
