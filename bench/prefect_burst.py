"""The burst anchor: flow runs of a plain Prefect deployment, created from many threads and run by
a default process worker limited to as many concurrent runs as the platform runs.

Runs in the platform environment against the Prefect API in PREFECT_API_URL; prints one JSON line.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect_baseline import process_worker

POOL = "bench-burst-process"


def main(runs: int, threads: int, limit: int) -> None:
    def create(_: int) -> tuple[str, float]:
        start = time.monotonic()
        flow_run = run_deployment("bench-baseline/burst", timeout=0)
        return str(flow_run.id), time.monotonic() - start

    with process_worker(POOL, "burst", limit), get_client(sync_client=True) as client:
        began = time.monotonic()
        with ThreadPoolExecutor(threads) as pool:
            made = list(pool.map(create, range(runs)))
        pending = {run_id for run_id, _ in made}
        while pending and time.monotonic() - began < 1800:
            pending = {run_id for run_id in pending if not client.read_flow_run(run_id).state.is_final()}  # type: ignore[union-attr]
            time.sleep(1)
        elapsed = time.monotonic() - began
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
