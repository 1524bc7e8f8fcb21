"""Job latency benchmark: starts the whole stack, drives it with the real client, prints numbers.

    make bench            (or: .venv-runtime/bin/python bench/jobs.py [runs])

Reports submit→RUNNING and submit→DONE (p50/p95) over hello-world jobs, live-log lag,
stop→process-gone and stop→CANCELED, and the same submit→RUNNING for a plain Prefect
deployment on a default process worker as the baseline ratio.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "e2e"))
from qiskit_serverless import QiskitFunction, ServerlessClient  # noqa: E402
from stack_process import PLATFORM_PYTHON, TEST_PORTS, job_processes, running_stack  # noqa: E402

INSTANCE = "crn:v1:bluemix:public:quantum-computing:us-east:a/0000:1111::"
HEADERS = {"Authorization": "Bearer awesome_token"}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def summary(name: str, values: list[float]) -> str:
    return (
        f"{name:<38} p50 {statistics.median(values):6.3f} s   p95 {percentile(values, 0.95):6.3f} s   (n={len(values)})"
    )


def upload(client: ServerlessClient, title: str, folder: str) -> QiskitFunction:
    function = client.upload(
        QiskitFunction(title=title, entrypoint="main.py", working_dir=str(HERE / "programs" / folder))
    )
    assert function is not None
    return function


def status_of(url: str, job_id: str) -> str:
    return str(requests.get(f"{url}/api/v1/jobs/{job_id}/", headers=HEADERS, timeout=30).json()["status"])


def latency(url: str, client: ServerlessClient, runs: int, gap: float) -> tuple[list[float], list[float]]:
    """Hello-world jobs one after the other, `gap` seconds apart (0: back to back)."""
    function = upload(client, "bench-hello", "hello")
    to_running: list[float] = []
    to_done: list[float] = []
    for index in range(runs):
        time.sleep(gap)
        start = time.monotonic()
        job = function.run(name=str(index))
        running = None
        while True:
            current = status_of(url, job.job_id)
            if current in ("RUNNING", "SUCCEEDED") and running is None:
                running = time.monotonic() - start
            if current in ("SUCCEEDED", "FAILED", "STOPPED"):
                to_done.append(time.monotonic() - start)
                assert current == "SUCCEEDED", current
                break
            time.sleep(0.01)
        to_running.append(running if running is not None else to_done[-1])
    return to_running, to_done


def log_lag(url: str, client: ServerlessClient) -> list[float]:
    function = upload(client, "bench-ticker", "ticker")
    job = function.run()
    seen: dict[str, float] = {}
    lags: list[float] = []
    while status_of(url, job.job_id) not in ("SUCCEEDED", "FAILED"):
        response = requests.get(f"{url}/api/v1/jobs/{job.job_id}/logs/", headers=HEADERS, timeout=30)
        now = time.time()
        if response.status_code == 200:
            for line in response.json()["logs"].splitlines():
                parts = line.split()
                if len(parts) == 3 and parts[0] == "tick" and parts[1] not in seen:
                    seen[parts[1]] = now
                    lags.append(now - float(parts[2]))
        time.sleep(0.05)
    return lags


def stop_times(url: str, client: ServerlessClient, data_dir: Path, runs: int) -> tuple[list[float], list[float]]:
    function = upload(client, "bench-stoppable", "stoppable")
    gone: list[float] = []
    canceled: list[float] = []
    for _ in range(runs):
        job = function.run()
        pid_file = data_dir / "storage" / "users" / "mockuser" / f"{job.job_id}.pid"
        while not (pid_file.exists() and pid_file.read_text()):
            time.sleep(0.05)
        start = time.monotonic()
        requests.post(f"{url}/api/v1/jobs/{job.job_id}/stop/", headers=HEADERS, json={"service": "null"}, timeout=30)
        process_gone = None
        while True:
            if process_gone is None and not job_processes(job.job_id):
                process_gone = time.monotonic() - start
            if status_of(url, job.job_id) == "STOPPED" and process_gone is not None:
                canceled.append(time.monotonic() - start)
                break
            time.sleep(0.01)
        gone.append(process_gone)
    return gone, canceled


def baseline(runs: int, data_dir: Path) -> dict[str, list[float]]:
    env = {
        **os.environ,
        "PREFECT_API_URL": f"http://127.0.0.1:{TEST_PORTS['QS_PREFECT_PORT']}/api",
        "PREFECT_PROFILES_PATH": str(data_dir / "prefect-profiles.toml"),
    }
    output = subprocess.run(
        [str(PLATFORM_PYTHON), str(HERE / "prefect_baseline.py"), str(runs)],
        env=env, capture_output=True, text=True, check=True, timeout=900,
    )  # fmt: skip
    return json.loads(output.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    with tempfile.TemporaryDirectory(prefix="qs-bench-") as temp, running_stack(Path(temp)) as url:
        client = ServerlessClient(host=url, token="awesome_token", instance=INSTANCE)
        idle_running, idle_done = latency(url, client, runs, gap=3.0)
        busy_running, busy_done = latency(url, client, runs, gap=0.0)
        lags = log_lag(url, client)
        gone, canceled = stop_times(url, client, Path(temp), 5)
        plain = baseline(max(5, runs // 2), Path(temp))
    print("\n== Qiskit Serverless on Prefect: job latency (this machine) ==")
    print(summary("submit -> RUNNING (3 s apart)", idle_running))
    print(summary("submit -> DONE (3 s apart)", idle_done))
    print(summary("submit -> RUNNING (back to back)", busy_running))
    print(summary("submit -> DONE (back to back)", busy_done))
    print(summary("live-log lag", lags))
    print(summary("stop -> program process gone", gone))
    print(summary("stop -> CANCELED", canceled))
    print(summary("baseline: process worker -> RUNNING", plain["to_running"]))
    print(summary("baseline: process worker -> DONE", plain["to_done"]))
    ratio = statistics.median(plain["to_running"]) / statistics.median(idle_running)
    print(f"{'submit -> RUNNING speed-up vs baseline':<38} {ratio:6.1f}x")


if __name__ == "__main__":
    main()
