"""The burst anchor: flow runs of a plain Prefect deployment, created from many threads and run by
a default process worker limited to as many concurrent runs as the platform runs.

Runs in the platform environment against the Prefect API in PREFECT_API_URL; prints one JSON line.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from prefect import flow
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment

HERE = Path(__file__).resolve().parent
POOL = "bench-burst-process"


def main(runs: int, threads: int, limit: int) -> None:
    subprocess.run(
        [sys.executable, "-m", "prefect", "work-pool", "create", POOL, "--type", "process"], capture_output=True
    )
    source = flow.from_source(source=str(HERE), entrypoint="baseline_flow.py:hello")
    source.deploy(name="burst", work_pool_name=POOL, print_next_steps=False)  # type: ignore[attr-defined]
    worker = subprocess.Popen(
        [sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL, "--limit", str(limit)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip

    def create(_: int) -> tuple[str, float]:
        start = time.monotonic()
        flow_run = run_deployment("bench-baseline/burst", timeout=0)
        return str(flow_run.id), time.monotonic() - start

    try:
        began = time.monotonic()
        with ThreadPoolExecutor(threads) as pool:
            made = list(pool.map(create, range(runs)))
        pending = {run_id for run_id, _ in made}
        with get_client(sync_client=True) as client:
            while pending and time.monotonic() - began < 1800:
                pending = {run_id for run_id in pending if not client.read_flow_run(run_id).state.is_final()}  # type: ignore[union-attr]
                time.sleep(1)
        elapsed = time.monotonic() - began
    finally:
        for _ in range(2):
            os.killpg(worker.pid, signal.SIGINT)
            time.sleep(1)
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
    latencies = sorted(seconds for _, seconds in made)
    print(
        json.dumps(
            {
                "jobs_per_min": 60 * (runs - len(pending)) / elapsed,
                "post_p50": statistics.median(latencies),
                "post_p99": latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))],
            }
        )
    )


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
