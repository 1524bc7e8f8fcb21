"""An executor told to stop with SIGTERM (an upgrade, a rolling restart, Kubernetes) stops taking
runs and lets the jobs it runs finish, then exits; `make run` starts it again and the runs that
waited meanwhile run (deployments/executor.py)."""

from __future__ import annotations

import os
import signal
import time

from conftest import TERMINAL, Stack, upload, wait_for, wait_for_log
from qiskit_serverless import ServerlessClient
from stack_process import executor_pid


def test_an_executor_stopped_with_sigterm_lets_its_jobs_finish(stack: Stack, client: ServerlessClient) -> None:
    steady = upload(client, "steady", "steady")
    running = [steady.run(seconds=8) for _ in range(2)]
    for job in running:
        wait_for_log(job, "started", timeout=120)
    draining = executor_pid(stack.data_dir)
    assert draining is not None
    os.kill(draining, signal.SIGTERM)
    time.sleep(1)  # the signal is handled: this job waits for the next executor
    waiting = steady.run(seconds=1)

    for job in running:
        assert wait_for(job, TERMINAL, timeout=180) == "DONE", job.logs()
        assert job.result() == {"worked": 8}
    assert wait_for(waiting, TERMINAL, timeout=240) == "DONE", waiting.logs()
    assert executor_pid(stack.data_dir) not in (None, draining)
    output = (stack.data_dir / "stack.out").read_text()
    assert "executor exited with 0" in output and "executor restarted." in output
