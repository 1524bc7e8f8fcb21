"""An executor stopped with SIGTERM (an upgrade, a rolling restart, Kubernetes) or killed outright
leaves its programs running under its supervisor, a detached Ray actor (flows/supervisor.py).
`make run` starts the executor again, and the new one adopts their runs: every job ends SUCCEEDED
with its result, its program having run once (deployments/executor.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Any

import pytest
import requests
from conftest import TERMINAL, Stack, upload, wait_for, wait_for_log
from qiskit_serverless import ServerlessClient
from stack_process import PLATFORM_PYTHON, ROOT, TEST_PORTS, executor_pid, stack_env

JOBS = 10  # more than the stack's Ray CPUs (8): two wait for a CPU in the supervisor; 5 per user (its limit)
SECONDS = 20


def flow_run_states(stack: Stack, job_id: str) -> list[dict[str, Any]]:
    run = stack.flow_run_of(job_id)
    found = requests.get(
        f"http://127.0.0.1:{TEST_PORTS['QS_PREFECT_PORT']}/api/flow_run_states/",
        params={"flow_run_id": run["id"]},
        auth=stack.prefect_login(),
        timeout=30,
    )
    assert found.status_code == 200, found.text
    return list(found.json())


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill-9"])
def test_the_jobs_of_a_stopped_executor_run_on_and_are_adopted(
    stack: Stack, client: ServerlessClient, stop: signal.Signals
) -> None:
    users = [client, stack.client("other_token")]
    programs = [upload(user, f"steady-{stop.name.lower()}", "steady") for user in users]
    jobs = [programs[index % 2].run(seconds=SECONDS) for index in range(JOBS)]
    for job in jobs:
        assert wait_for(job, {"RUNNING"} | TERMINAL, timeout=120) == "RUNNING", job.logs()
    wait_for_log(jobs[0], "started", timeout=120)
    stopped = executor_pid(stack.data_dir)
    assert stopped is not None
    os.kill(stopped, stop)
    stopped_at = time.monotonic()

    for job in jobs:
        assert wait_for(job, TERMINAL, timeout=240) == "DONE", job.logs()
        assert job.result() == {"worked": SECONDS}
        assert job.logs().count("started") == 1, "the program ran once"
    assert time.monotonic() - stopped_at < 120
    assert executor_pid(stack.data_dir) not in (None, stopped)
    for job in jobs:  # the stopped executor left every one of them, and another one claimed it
        claims = [state["message"] for state in flow_run_states(stack, job.job_id) if state["type"] == "PENDING"]
        assert len(claims) == 2 and claims[0] != claims[1], claims
    if stop == signal.SIGTERM:
        assert "executor exited with 0" in (stack.data_dir / "stack.out").read_text()


def test_a_supervisor_ended_by_mistake_is_started_again(stack: Stack, client: ServerlessClient) -> None:
    # Someone (an operator's `ray kill`, a node restart) ends the live executor's supervisor: the
    # executor, which keeps its handle, starts it again for the next job instead of failing it.
    end = "import os; from core.settings import Settings, platform_env; settings = Settings(); "
    end += "os.environ.update(platform_env(settings)); import ray; from flows import supervisor; "
    end += "ray.init(address=settings.ray_cluster); names = supervisor.supervisors(); "
    end += "[ray.kill(actor) for actor in map(supervisor.handle, names) if actor]; print(len(names))"
    executor = executor_pid(stack.data_dir)
    done = subprocess.run(
        [str(PLATFORM_PYTHON), "-c", end], cwd=ROOT, env=stack_env(stack.data_dir), capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert int(done.stdout.split()[-1]) >= 1, "the executor's supervisor was running"

    job = upload(client, "after-supervisor-ended", "hello").run(name="again")
    assert wait_for(job, TERMINAL, timeout=120) == "DONE", job.logs()
    assert job.result() == {"hello": "again"}
    assert executor_pid(stack.data_dir) == executor, "the same executor ran it"
