"""A flow of one's own runs platform programs as Prefect tasks (flows/program_tasks.py)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from conftest import Stack, upload
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
