"""A starting executor closes what a previous one left in its work pool, every run of it: a run
claimed but never started is given back and runs, a running one whose program no supervisor holds
is Crashed."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import requests
from conftest import Stack
from stack_process import PLATFORM_PYTHON, ROOT, TEST_PORTS

PREFECT = f"http://127.0.0.1:{TEST_PORTS['QS_PREFECT_PORT']}/api"
POOL = "qiskit-serverless-recovery"
# As the Prefect UI shows them (core/lost_runs.py, core/job_log.py).
AUTOMATION = "qiskit-serverless: lost programs"
LOST = "Job failed: its program's supervisor stopped sending heartbeats"
CLAIMED, RUNNING = 230, 20  # more than one page (200) of each kind together


def prefect(stack: Stack, method: str, path: str, **body: Any) -> Any:
    response = requests.request(method, f"{PREFECT}{path}", json=body, auth=stack.prefect_login(), timeout=60)
    assert response.status_code < 300, response.text
    return response.json() if response.content else None


def states(stack: Stack, deployment_id: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for offset in range(0, CLAIMED + RUNNING, 200):
        page = prefect(
            stack, "POST", "/flow_runs/filter", deployments={"id": {"any_": [deployment_id]}}, limit=200, offset=offset
        )
        found.update({run["id"]: run["state"]["type"] for run in page})
    return found


def test_a_starting_executor_gives_back_claimed_runs_and_closes_running_ones(stack: Stack) -> None:
    prefect(stack, "POST", "/work_pools/", name=POOL, type="process")
    flow = prefect(stack, "POST", "/flows/", name="left-behind")
    deployment = prefect(stack, "POST", "/deployments/", name="left-behind", flow_id=flow["id"], work_pool_name=POOL)
    try:
        kinds = ["PENDING"] * CLAIMED + ["RUNNING"] * RUNNING
        left = {
            prefect(stack, "POST", f"/deployments/{deployment['id']}/create_flow_run", state={"type": kind})["id"]: kind
            for kind in kinds
        }
        assert set(states(stack, deployment["id"]).values()) == {"PENDING", "RUNNING"}

        env = {
            **os.environ,
            "PREFECT_API_URL": PREFECT,
            "PREFECT_PROFILES_PATH": str(stack.data_dir / "prefect-profiles.toml"),
            **TEST_PORTS,
            "QS_WORK_POOL": POOL,
            "QS_DATA_DIR": str(stack.data_dir),
        }
        # The platform's settings (its Ray token among them) before Ray is imported.
        recover = "import asyncio, os; from core.settings import Settings, platform_env; settings = Settings(); "
        recover += "os.environ.update(platform_env(settings)); import ray; from deployments.executor import Executor; "
        recover += "ray.init(address=settings.ray_cluster); asyncio.run(Executor(settings).recover())"
        done = subprocess.run(
            [str(PLATFORM_PYTHON), "-c", recover], cwd=ROOT, env=env, capture_output=True, timeout=300
        )
        assert done.returncode == 0, done.stderr[-3000:]

        now = states(stack, deployment["id"])
        expected = {"PENDING": "SCHEDULED", "RUNNING": "CRASHED"}
        assert {run: now[run] for run in left} == {run: expected[kind] for run, kind in left.items()}
    finally:
        prefect(stack, "DELETE", f"/deployments/{deployment['id']}")
        prefect(stack, "DELETE", f"/work_pools/{POOL}")


def heartbeat(stack: Stack, run_id: str) -> None:
    event = {
        "id": str(uuid.uuid4()),
        "occurred": datetime.now(UTC).isoformat(),
        "event": "prefect.flow-run.heartbeat",
        "resource": {"prefect.resource.id": f"prefect.flow-run.{run_id}"},
    }
    sent = requests.post(f"{PREFECT}/events", json=[event], auth=stack.prefect_login(), timeout=30)
    assert sent.status_code < 300, sent.text


def test_a_run_whose_heartbeats_stop_is_crashed_by_the_lost_program_automation(stack: Stack) -> None:
    """Prefect's own zombie-run detection (core/lost_runs.py), which the executor sets up: a run
    whose supervisor stops sending heartbeats is Crashed within a minute; one still beating is not."""
    [automation] = prefect(stack, "POST", "/automations/filter", automations={"name": {"any_": [AUTOMATION]}})
    assert automation["enabled"]
    pool = "qiskit-serverless-heartbeats"  # no executor serves it: only the automation acts on its runs
    prefect(stack, "POST", "/work_pools/", name=pool, type="process")
    flow = prefect(stack, "POST", "/flows/", name="beating")
    deployment = prefect(stack, "POST", "/deployments/", name="beating", flow_id=flow["id"], work_pool_name=pool)
    try:
        lost, beating = (
            prefect(stack, "POST", f"/deployments/{deployment['id']}/create_flow_run", state={"type": "RUNNING"})["id"]
            for _ in range(2)
        )
        heartbeat(stack, lost)
        started = time.monotonic()
        while (state := prefect(stack, "GET", f"/flow_runs/{lost}")["state"])["type"] == "RUNNING":
            assert time.monotonic() - started < 60, "closed within a minute"
            heartbeat(stack, beating)
            time.sleep(5)
        assert state["type"] == "CRASHED" and state["message"].startswith(LOST), state
        assert prefect(stack, "GET", f"/flow_runs/{beating}")["state"]["type"] == "RUNNING"
    finally:
        prefect(stack, "DELETE", f"/deployments/{deployment['id']}")
        prefect(stack, "DELETE", f"/work_pools/{pool}")
