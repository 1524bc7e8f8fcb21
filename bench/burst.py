"""Load benchmark: a burst of jobs from many threads, reads under a real load generator, big lists.

    make bench            (or: .venv-runtime/bin/python bench/burst.py [jobs] [threads])

Starts its own stack (QS_MAX_ACTIVE_JOBS=1000) and reports:
- burst: `jobs` hello-world jobs submitted through the real client from `threads` threads:
  jobs/min from the first submission to the last job's end, `POST /programs/run` p50/p99,
  failed requests, and jobs lost (not SUCCEEDED, or a result that is not the job's own);
- reads: `GET /jobs/{id}` requests/s for 10 s from Debian's `wrk` (16 connections), against
  `GET /liveness/` in the same run;
- listing: `GET /jobs/?limit=100` and a status-filtered list with 10,000 jobs of one user in the store;
- anchor: the same burst (smaller) against a plain Prefect deployment on a default process worker
  limited to the same number of concurrent runs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "e2e"))
from qiskit_serverless import QiskitFunction, ServerlessClient  # noqa: E402
from stack_process import PLATFORM_PYTHON, TEST_PORTS, running_stack, stack_dir, stack_env  # noqa: E402

INSTANCE = "crn:v1:bluemix:public:quantum-computing:us-east:a/0000:1111::"
TOKEN = "awesome_token"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}
LISTED_JOBS = 10_000
ANCHOR_JOBS = 40
CONCURRENT_RUNS = 8  # the embedded Ray head's CPUs over a job's (QS_RAY_NUM_CPUS / QS_JOB_NUM_CPUS)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def burst(url: str, jobs: int, threads: int, more_gateways: tuple[str, ...] = ()) -> tuple[dict[str, float], str]:
    """The burst's figures, and one of its jobs (for the reads). With more gateways, submissions go
    to each gateway by turns."""
    client = ServerlessClient(host=url, token=TOKEN, instance=INSTANCE)
    function = client.upload(
        QiskitFunction(title="burst-hello", entrypoint="main.py", working_dir=str(HERE / "programs" / "hello"))
    )
    assert function is not None
    gateways = [function] + [
        ServerlessClient(host=other, token=TOKEN, instance=INSTANCE).function("burst-hello") for other in more_gateways
    ]

    def submit(index: int) -> tuple[str | None, float]:
        start = time.monotonic()
        try:
            job = gateways[index % len(gateways)].run(name=f"job-{index}")
            return job.job_id, time.monotonic() - start
        except Exception as error:  # the client raises on any non-2xx answer or timeout
            print(f"submission {index} failed: {error}", file=sys.stderr)
            return None, time.monotonic() - start

    began = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        submitted = list(pool.map(submit, range(jobs)))
    ids = {index: job_id for index, (job_id, _) in enumerate(submitted) if job_id}
    pending = dict(ids)
    deadline = time.monotonic() + 900
    while pending and time.monotonic() < deadline:
        listed = requests.get(f"{url}/api/v1/jobs/", params={"limit": 0}, headers=HEADERS, timeout=60).json()
        ended = {job["id"] for job in listed["results"] if job["status"] in TERMINAL}
        pending = {index: job_id for index, job_id in pending.items() if job_id not in ended}
        time.sleep(0.5)
    elapsed = time.monotonic() - began
    lost = len(pending) + (jobs - len(ids))
    for index, job_id in ids.items():
        if index in pending:
            continue
        answer = requests.get(
            f"{url}/api/v1/jobs/{job_id}/", params={"with_result": "true"}, headers=HEADERS, timeout=60
        )
        job = answer.json()
        if job["status"] != "SUCCEEDED" or json.loads(job["result"] or "{}") != {"hello": f"job-{index}"}:
            lost += 1
    latencies = [seconds for _, seconds in submitted]
    return {
        "jobs_per_min": 60 * len(ids) / elapsed,
        "post_p50": statistics.median(latencies),
        "post_p99": percentile(latencies, 0.99),
        "failed_requests": float(jobs - len(ids)),
        "lost": float(lost),
        "duplicated_ids": float(len(ids) - len(set(ids.values()))),
    }, ids[min(ids)]


def report_burst(title: str, figures: dict[str, float], prefix: str, width: int) -> None:
    """A burst's three lines: its rate, its run requests' latency, and what failed or was lost."""
    print(f"{title:<{width}} {figures['jobs_per_min']:7.1f} jobs/min")
    print(
        f"{prefix + 'POST /programs/run':<{width}} p50 {figures['post_p50']:6.3f} s   p99 {figures['post_p99']:6.3f} s"
    )
    lost = f"{figures['failed_requests']:.0f} / {figures['lost']:.0f} / {figures['duplicated_ids']:.0f}"
    print(f"{prefix + 'failed requests / lost / duplicated':<{width}} {lost}")


def wrk(url: str, seconds: int = 10) -> float:
    """Requests/s of Debian's wrk: 2 threads, 16 connections."""
    output = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{seconds}s", "-H", f"Authorization: Bearer {TOKEN}", url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    found = re.search(r"Requests/sec:\s+([\d.]+)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        print(f"wrk {url}: {non_2xx.group(1)} non-2xx answers", file=sys.stderr)
    assert found, output
    return float(found.group(1))


def listing(url: str, data_dir: Path) -> dict[str, float]:
    """Seed LISTED_JOBS finished jobs into the store, then time the lists."""
    subprocess.run(
        [str(PLATFORM_PYTHON), str(HERE / "seed_jobs.py"), "mockuser", "burst-hello", str(LISTED_JOBS)],
        env=stack_env(data_dir), check=True, cwd=HERE.parent,
    )  # fmt: skip

    def timed(params: dict[str, object]) -> tuple[float, int]:
        samples = []
        count = 0
        for _ in range(10):
            start = time.monotonic()
            answer = requests.get(f"{url}/api/v1/jobs/", params=params, headers=HEADERS, timeout=60)
            samples.append(time.monotonic() - start)
            assert answer.status_code == 200, answer.text
            count = answer.json()["count"]
        return statistics.median(samples), count

    plain, plain_count = timed({"limit": 100})
    succeeded, succeeded_count = timed({"limit": 100, "status": "SUCCEEDED"})
    deep, _ = timed({"limit": 100, "offset": 9_000})
    return {
        "list": plain,
        "list_count": plain_count,
        "status": succeeded,
        "status_count": succeeded_count,
        "deep": deep,
    }


def anchor(data_dir: Path, jobs: int, threads: int) -> dict[str, float]:
    env = {
        **os.environ,
        "PREFECT_API_URL": f"http://127.0.0.1:{TEST_PORTS['QS_PREFECT_PORT']}/api",
        "PREFECT_PROFILES_PATH": str(data_dir / "prefect-profiles.toml"),
    }
    command = [str(PLATFORM_PYTHON), str(HERE / "prefect_burst.py"), str(jobs), str(threads), str(CONCURRENT_RUNS)]
    output = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800, check=False)
    if output.returncode != 0:
        print(f"anchor failed:\n{output.stderr[-3000:]}", file=sys.stderr)
        return {"jobs_per_min": float("nan"), "post_p50": float("nan"), "post_p99": float("nan")}
    return json.loads(output.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    jobs = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: make bench installs it (apt-get install -y wrk)")
    with stack_dir("qs-burst-") as data_dir, running_stack(data_dir, extra={"QS_MAX_ACTIVE_JOBS": "1000"}) as url:
        load, sample = burst(url, jobs, threads)
        job_rate = wrk(f"{url}/api/v1/jobs/{sample}/")
        live_rate = wrk(f"{url}/liveness/")
        lists = listing(url, data_dir)
        plain = anchor(data_dir, ANCHOR_JOBS, threads)
    print(f"\n== Qiskit Serverless on Prefect: load (this machine, {os.cpu_count()} cores) ==")
    report_burst(f"burst: {jobs} jobs from {threads} threads", load, "burst: ", 44)
    print(f"{'reads: GET /jobs/{id} (wrk, 16 connections)':<44} {job_rate:7.0f} req/s")
    print(f"{'reads: GET /liveness/ (same run)':<44} {live_rate:7.0f} req/s   ratio {job_rate / live_rate:.2f}")
    listed = f"list: GET /jobs/?limit=100, {LISTED_JOBS} jobs"
    print(f"{listed:<44} p50 {lists['list']:6.3f} s   (count {lists['list_count']:.0f})")
    print(f"{'list: ... &status=SUCCEEDED':<44} p50 {lists['status']:6.3f} s   (count {lists['status_count']:.0f})")
    print(f"{'list: ... &offset=9000':<44} p50 {lists['deep']:6.3f} s")
    anchored = f"anchor: {ANCHOR_JOBS} runs, process worker (limit {CONCURRENT_RUNS})"
    print(f"{anchored:<44} {plain['jobs_per_min']:7.1f} jobs/min")
    print(f"{'anchor: create flow run':<44} p50 {plain['post_p50']:6.3f} s   p99 {plain['post_p99']:6.3f} s")


if __name__ == "__main__":
    main()
