"""A flow of one's own runs platform programs as Prefect tasks (flows/program_tasks.py)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import requests
from conftest import TERMINAL, Stack, upload, wait_for
from qiskit_serverless import ServerlessClient
from stack_process import PLATFORM_PYTHON, ROOT, TEST_PORTS

HERE = Path(__file__).resolve().parent


def test_a_flow_runs_programs_as_tasks_and_gets_their_results(stack: Stack, client: ServerlessClient) -> None:
    upload(client, "hello-from-flow", "hello")
    upload(client, "fails-from-flow", "flaky")  # fails on its first (and only) attempt
    env = {
        **os.environ,
        "PREFECT_API_URL": f"http://127.0.0.1:{TEST_PORTS['QS_PREFECT_PORT']}/api",
        "PREFECT_PROFILES_PATH": str(stack.data_dir / "prefect-profiles.toml"),
    }
    command = [str(PLATFORM_PYTHON), str(HERE / "program_flow.py"), stack.url, "awesome_token"]
    run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    outcome = json.loads(run.stdout.strip().splitlines()[-1])
    assert outcome == {"greeting": {"hello": "flow"}, "failed": {"status": "FAILED", "logged": True}}


def example_environment(stack: Stack) -> dict[str, str]:
    """The gateway's address and token reach the example through the environment, never its parameters."""
    return {
        **os.environ,
        "PREFECT_API_URL": f"http://127.0.0.1:{TEST_PORTS['QS_PREFECT_PORT']}/api",
        "PREFECT_PROFILES_PATH": str(stack.data_dir / "prefect-profiles.toml"),
        "QS_GATEWAY_URL": stack.url,
        "QS_GATEWAY_TOKEN": "awesome_token",
    }


EXAMPLE = [str(PLATFORM_PYTHON), "-m", "flows.examples.fan_out"]


def test_the_example_flow_fans_out_to_three_programs_and_combines_their_results(
    stack: Stack, client: ServerlessClient
) -> None:
    for title in ("fan-a", "fan-b", "fan-c"):
        upload(client, title, "hello")
    command = [*EXAMPLE, "fan-a", "fan-b", "fan-c"]
    run = subprocess.run(command, cwd=ROOT, env=example_environment(stack), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    combined = json.loads(run.stdout.strip().splitlines()[-1])
    assert combined == {title: {"hello": "world"} for title in ("fan-a", "fan-b", "fan-c")}


def test_cancelling_the_example_flow_stops_its_running_job(stack: Stack, client: ServerlessClient) -> None:
    function = upload(client, "fan-idle", "idle")
    flow = subprocess.Popen(
        [*EXAMPLE, "fan-idle"], cwd=ROOT, env=example_environment(stack), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 120
        while not (running := [job for job in function.jobs() if job.status() == "RUNNING"]):
            assert time.monotonic() < deadline and flow.poll() is None
            time.sleep(0.5)
        [job] = running
        prefect = f"http://127.0.0.1:{TEST_PORTS['QS_PREFECT_PORT']}/api"
        query = {
            "flows": {"name": {"any_": ["fan-out-programs"]}},
            "flow_runs": {"state": {"type": {"any_": ["RUNNING"]}}},
        }
        found = requests.post(f"{prefect}/flow_runs/filter", json=query, auth=stack.prefect_login(), timeout=30)
        [flow_run] = found.json()
        cancel = {"state": {"type": "CANCELLING"}, "force": True}
        answer = requests.post(
            f"{prefect}/flow_runs/{flow_run['id']}/set_state", json=cancel, auth=stack.prefect_login(), timeout=30
        )
        assert answer.status_code in (200, 201), answer.text
        assert wait_for(job, TERMINAL, timeout=60) == "CANCELED"
        assert flow.wait(timeout=60) != 0, "the flow saw its task give the job up"
    finally:
        flow.kill()
        flow.wait()
