"""Burst benchmark on `make cluster`'s topology against the single-machine default, in one run.

    make bench            (or: .venv-runtime/bin/python bench/cluster.py [jobs] [threads])

Both burst `jobs` hello-world jobs from `threads` threads through the real client (bench/burst.py):
first at the default stack (`make run`: one gateway, one executor, one Ray node), then at the
cluster (two gateways taking the submissions by turns, two executors, a Ray head and a second
node, S3 storage on moto's server), and report jobs/min, `POST /programs/run` p50/p99 and what
failed or was lost. Both run on this one machine, so the cluster's extra processes share its cores.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "e2e"))
from burst import burst, report_burst  # noqa: E402
from stack_process import running_cluster, running_stack, stack_dir  # noqa: E402

LIMITS = {"QS_MAX_ACTIVE_JOBS": "1000"}


def main() -> None:
    jobs = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    with stack_dir("qs-bench-single-") as data_dir, running_stack(data_dir, extra=LIMITS) as url:
        single, _ = burst(url, jobs, threads)
    with stack_dir("qs-bench-cluster-") as data_dir, running_cluster(data_dir, LIMITS) as (first, second):
        cluster, _ = burst(first, jobs, threads, (second,))
    print(f"\n== Qiskit Serverless on Prefect: cluster topology (this machine, {os.cpu_count()} cores) ==")
    for name, figures in (("single machine (make run)", single), ("cluster (make cluster)", cluster)):
        report_burst(f"{name}: {jobs} jobs from {threads} threads", figures, "  ", 52)
    print(f"{'cluster over single machine':<52} {cluster['jobs_per_min'] / single['jobs_per_min']:7.2f}")


if __name__ == "__main__":
    main()
