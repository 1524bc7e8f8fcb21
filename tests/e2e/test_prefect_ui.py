"""The Prefect UI is the operator's window: a real headless browser logs in and reads a job's run."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import TERMINAL, Stack, upload, wait_for
from qiskit_serverless import ServerlessClient
from stack_process import PLATFORM_PYTHON, TEST_PORTS

HERE = Path(__file__).resolve().parent


def test_the_prefect_ui_shows_a_finished_jobs_run_and_output(
    stack: Stack, client: ServerlessClient, tmp_path: Path
) -> None:
    job = upload(client, "ui-visible", "private_lines").run()
    assert wait_for(job, TERMINAL) == "DONE", job.logs()
    user, password = stack.prefect_login()
    screenshot = tmp_path / "flow-run.png"  # kept in pytest's folder for this test
    run_id = stack.flow_run_of(job.job_id)["id"]
    command = [
        str(PLATFORM_PYTHON), str(HERE / "prefect_ui.py"), f"http://127.0.0.1:{TEST_PORTS['QS_PREFECT_PORT']}",
        f"{user}:{password}", run_id, str(screenshot), "ui-visible", "an ordinary line for the Prefect UI",
    ]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["missing"] == [], (seen, f"screenshot: {screenshot}")
    assert screenshot.stat().st_size > 10_000
