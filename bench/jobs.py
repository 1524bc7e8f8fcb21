"""Job latency benchmark: starts the whole stack, drives it with the real client, prints numbers.

    make bench            (or: .venv-runtime/bin/python bench/jobs.py [runs])

Reports submit→RUNNING and submit→DONE (p50/p95) over hello-world jobs, spaced apart and back to
back; live-log lag; stop→every process of the job gone and stop→CANCELED; a tutorial-sized program
(a circuit transpiled and sampled on a fake backend) against its own run time in a warm interpreter;
a program written as a Prefect flow of three tasks on its own Ray against the same with plain Ray
tasks; the launcher's resident memory and a running job's private memory; and, as anchors in the same run,
a cold interpreter's imports (what a program pays without the launcher) and submit→RUNNING for a
plain Prefect deployment on a default process worker.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "e2e"))
from qiskit_serverless import QiskitFunction, ServerlessClient  # noqa: E402
from stack_process import PLATFORM_PYTHON, TEST_PORTS, job_processes, running_stack, stack_dir  # noqa: E402

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


def started(function: QiskitFunction, data_dir: Path) -> Any:
    """A stoppable job once its program runs (it writes a pid file first)."""
    job = function.run()
    pid_file = data_dir / "storage" / "users" / "mockuser" / f"{job.job_id}.pid"
    while not (pid_file.exists() and pid_file.read_text()):
        time.sleep(0.05)
    return job


def request_stop(url: str, job_id: str) -> None:
    requests.post(f"{url}/api/v1/jobs/{job_id}/stop/", headers=HEADERS, json={"service": "null"}, timeout=30)


def stop_times(url: str, stoppable: QiskitFunction, data_dir: Path, runs: int) -> tuple[list[float], list[float]]:
    gone: list[float] = []
    canceled: list[float] = []
    for _ in range(runs):
        job = started(stoppable, data_dir)
        start = time.monotonic()
        request_stop(url, job.job_id)
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


def scheduled(url: str, client: ServerlessClient, data_dir: Path, runs: int) -> list[float]:
    """A 10 s interval schedule through /api/v1: from each run's due time to its RUNNING state."""
    function = upload(client, "bench-scheduled", "hello")
    program = requests.get(f"{url}/api/v1/programs/get_by_title/bench-scheduled/", headers=HEADERS, timeout=30).json()
    schedules = f"{url}/api/v1/programs/{program['id']}/schedules"
    made = requests.post(schedules, headers=HEADERS, json={"interval_seconds": 10}, timeout=30).json()
    deadline = time.monotonic() + 10 * runs + 30
    while len([job for job in client.jobs(limit=100, function=function) if job.status() == "DONE"]) < runs:
        assert time.monotonic() < deadline, "scheduled runs did not finish"
        time.sleep(1)
    requests.delete(f"{schedules}/{made['id']}", headers=HEADERS, timeout=30)
    ids = [job.job_id for job in client.jobs(limit=100, function=function) if job.status() == "DONE"][:runs]
    env = {
        **os.environ,
        "PREFECT_API_URL": f"http://127.0.0.1:{TEST_PORTS['QS_PREFECT_PORT']}/api",
        "PREFECT_PROFILES_PATH": str(data_dir / "prefect-profiles.toml"),
    }
    return _anchor([str(HERE / "schedule_lag.py"), *ids], env)["due_to_running"]


RUNTIME_PYTHON = HERE.parent / ".venv-runtime" / "bin" / "python"
PRELOADED = "import qiskit_serverless, qiskit, qiskit_ibm_runtime"


def cold_imports(runs: int) -> list[float]:
    """Anchor: what a program pays before its first line without the launcher (a fresh interpreter
    importing what the launcher pre-imports)."""
    times = []
    for _ in range(runs):
        start = time.monotonic()
        subprocess.run([str(RUNTIME_PYTHON), "-c", PRELOADED], check=True)
        times.append(time.monotonic() - start)
    return times


def tutorial(url: str, client: ServerlessClient, runs: int) -> tuple[list[float], list[float]]:
    """The tutorial program through the platform (submit -> DONE), and its own run time as the first
    call in an interpreter that has already imported the runtime (what a forked child starts from)."""
    function = upload(client, "bench-tutorial", "tutorial")
    done: list[float] = []
    for _ in range(runs):
        start = time.monotonic()
        job = function.run(qubits=5)
        while (current := status_of(url, job.job_id)) not in ("SUCCEEDED", "FAILED", "STOPPED"):
            time.sleep(0.01)
        assert current == "SUCCEEDED", job.logs()
        done.append(time.monotonic() - start)
    own: list[float] = []
    timing = (
        f"import sys, time; {PRELOADED}; sys.path.insert(0, {str(HERE / 'programs' / 'tutorial')!r}); "
        "import main; start = time.monotonic(); main.main(5); print(time.monotonic() - start)"
    )
    for _ in range(runs):
        output = subprocess.run([str(RUNTIME_PYTHON), "-c", timing], check=True, capture_output=True, text=True)
        own.append(float(output.stdout.split()[-1]))
    return done, own


def flow_programs(url: str, client: ServerlessClient, runs: int) -> dict[str, list[float]]:
    """submit -> DONE of a program that is a Prefect flow of three tasks on the job's own Ray, and of
    the same program with plain Ray tasks (the difference is what Prefect adds in a program)."""
    times: dict[str, list[float]] = {}
    for folder in ("flow_program", "ray_program"):
        function = upload(client, f"bench-{folder.replace('_', '-')}", folder)
        times[folder] = []
        for _ in range(runs):
            start = time.monotonic()
            job = function.run(seeds=[1, 2, 3])
            while (current := status_of(url, job.job_id)) not in ("SUCCEEDED", "FAILED", "STOPPED"):
                time.sleep(0.05)
            assert current == "SUCCEEDED", job.logs()
            times[folder].append(time.monotonic() - start)
    return times


def private_mb(pid: int) -> float:
    """Memory only this process holds (no pages shared with the launcher it was forked from)."""
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0.0
    kib = sum(
        int(line.split()[1]) for line in rollup.splitlines() if line.startswith(("Private_Clean", "Private_Dirty"))
    )
    return kib / 1024


def memory(url: str, stoppable: QiskitFunction, data_dir: Path) -> tuple[list[float], list[float]]:
    """Resident memory of each worker's launcher, and private memory of a running job's processes."""
    launchers = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"flows/launcher.py" in (entry / "cmdline").read_bytes():
                status = (entry / "status").read_text().splitlines()
                rss_kib = int(next(line for line in status if line.startswith("VmRSS")).split()[1])
                launchers.append(rss_kib / 1024)
        except (OSError, StopIteration):
            continue
    children = []
    for _ in range(3):
        job = started(stoppable, data_dir)
        children.append(sum(private_mb(pid) for pid in job_processes(job.job_id)))
        request_stop(url, job.job_id)
        while status_of(url, job.job_id) != "STOPPED":
            time.sleep(0.05)
    return launchers, children


def ray_jobs(runs: int, data_dir: Path) -> dict[str, list[float]]:
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(data_dir / "ray-auth-token")}
    dashboard = f"http://127.0.0.1:{TEST_PORTS['QS_RAY_DASHBOARD_PORT']}"
    arguments = data_dir / "ray-job-arguments.json"
    arguments.write_text("{}")
    command = [str(HERE / "ray_jobs_baseline.py"), dashboard, str(RUNTIME_PYTHON), str(runs), str(arguments)]
    return _anchor(command, env)


def _anchor(command: list[str], env: dict[str, str]) -> dict[str, list[float]]:
    """Run an anchor measurement in the platform environment; an anchor that fails is reported, not fatal."""
    output = subprocess.run(
        [str(PLATFORM_PYTHON), *command], env=env, capture_output=True, text=True, timeout=900, check=False
    )
    if output.returncode != 0:
        print(f"anchor {command[0]} failed:\n{output.stderr[-3000:]}", file=sys.stderr)
        return {"to_running": [float("nan")], "to_done": [float("nan")]}
    return json.loads(output.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def baseline(runs: int, data_dir: Path) -> dict[str, list[float]]:
    env = {
        **os.environ,
        "PREFECT_API_URL": f"http://127.0.0.1:{TEST_PORTS['QS_PREFECT_PORT']}/api",
        "PREFECT_PROFILES_PATH": str(data_dir / "prefect-profiles.toml"),
    }
    return _anchor([str(HERE / "prefect_baseline.py"), str(runs)], env)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    with stack_dir("qs-bench-") as data_dir, running_stack(data_dir) as url:
        client = ServerlessClient(host=url, token="awesome_token", instance=INSTANCE)
        idle_running, idle_done = latency(url, client, runs, gap=3.0)
        busy_running, busy_done = latency(url, client, runs, gap=0.0)
        lags = log_lag(url, client)
        stoppable = upload(client, "bench-stoppable", "stoppable")
        gone, canceled = stop_times(url, stoppable, data_dir, 5)
        tutorial_done, tutorial_own = tutorial(url, client, max(5, runs // 2))
        launchers, children = memory(url, stoppable, data_dir)
        flows = flow_programs(url, client, 3)
        due_lag = scheduled(url, client, data_dir, 5)
        ray_plain = ray_jobs(max(5, runs // 2), data_dir)
        plain = baseline(max(5, runs // 2), data_dir)
    cold = cold_imports(5)
    print("\n== Qiskit Serverless on Prefect: job latency (this machine) ==")
    print(summary("submit -> RUNNING (3 s apart)", idle_running))
    print(summary("submit -> DONE (3 s apart)", idle_done))
    print(summary("submit -> RUNNING (back to back)", busy_running))
    print(summary("submit -> DONE (back to back)", busy_done))
    print(summary("live-log lag", lags))
    print(summary("stop -> program process gone", gone))
    print(summary("stop -> CANCELED", canceled))
    print(summary("schedule: due time -> RUNNING", due_lag))
    print(summary("tutorial program: submit -> DONE", tutorial_done))
    print(summary("tutorial program: own run, warm", tutorial_own))
    overhead = statistics.median(tutorial_done) - statistics.median(tutorial_own)
    print(f"{'tutorial: platform overhead (p50 diff)':<38} {overhead:6.3f} s")
    print(summary("flow program (3 Prefect tasks on Ray)", flows["flow_program"]))
    print(summary("same with plain Ray tasks", flows["ray_program"]))
    print(f"{'launcher RSS per Ray worker':<38} {', '.join(f'{mb:.0f}' for mb in launchers)} MB")
    print(f"{'running job private memory (USS)':<38} {', '.join(f'{mb:.1f}' for mb in children)} MB")
    print(summary("anchor: cold interpreter + imports", cold))
    print(summary("anchor: plain Ray job -> RUNNING", ray_plain["to_running"]))
    print(summary("anchor: plain Ray job -> DONE", ray_plain["to_done"]))
    print(summary("baseline: process worker -> RUNNING", plain["to_running"]))
    print(summary("baseline: process worker -> DONE", plain["to_done"]))
    ratio = statistics.median(plain["to_running"]) / statistics.median(idle_running)
    print(f"{'submit -> RUNNING speed-up vs baseline':<38} {ratio:6.1f}x")


if __name__ == "__main__":
    main()
