"""submit→RUNNING / submit→COMPLETED of a plain Prefect deployment on a default process worker.

Runs in the platform environment against the Prefect API in PREFECT_API_URL; prints one JSON line.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prefect import flow
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment

HERE = Path(__file__).resolve().parent
POOL = "bench-baseline-process"


@contextmanager
def process_worker(pool: str, deployment: str, limit: int | None = None) -> Iterator[None]:
    """The baseline flow deployed as `deployment` on a process work pool, served by a default
    process worker (at most `limit` runs at once) until the block ends."""
    subprocess.run(
        [sys.executable, "-m", "prefect", "work-pool", "create", pool, "--type", "process"], capture_output=True
    )
    source = flow.from_source(source=str(HERE), entrypoint="baseline_flow.py:hello")
    source.deploy(name=deployment, work_pool_name=pool, print_next_steps=False)  # type: ignore[attr-defined]
    limited = ["--limit", str(limit)] if limit is not None else []
    worker = subprocess.Popen(
        [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, *limited],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        yield
    finally:
        for _ in range(2):
            os.killpg(worker.pid, signal.SIGINT)
            time.sleep(1)
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)


def main(runs: int) -> None:
    to_running: list[float] = []
    to_done: list[float] = []
    with process_worker(POOL, "baseline"), get_client(sync_client=True) as client:
        for _ in range(runs):
            start = time.monotonic()
            flow_run = run_deployment("bench-baseline/baseline", timeout=0)
            running = None
            while True:
                state = client.read_flow_run(flow_run.id).state
                if state and state.is_running() and running is None:
                    running = time.monotonic() - start
                if state and state.is_final():
                    to_done.append(time.monotonic() - start)
                    break
                time.sleep(0.02)
            to_running.append(running if running is not None else to_done[-1])
    print(json.dumps({"to_running": to_running, "to_done": to_done}))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
