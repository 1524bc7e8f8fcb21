"""Start the whole stack as `make run` does, on chosen ports and a chosen data directory.

Shared by the end-to-end tests and the benchmarks; standard library and requests only,
since it runs in the runtime environment where the client lives.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
PLATFORM_PYTHON = ROOT / ".venv" / "bin" / "python"

# Ports outside Ray's worker port range (10002-19999) and away from `make run`'s defaults.
TEST_PORTS = {
    "QS_PORT": "28000",
    "QS_PREFECT_PORT": "24200",
    "QS_RAY_PORT": "26390",
    "QS_RAY_DASHBOARD_PORT": "28265",
    "QS_POSTGRES_PORT": "25433",
}


def stack_env(
    data_dir: Path, ports: dict[str, str] = TEST_PORTS, extra: dict[str, str] | None = None
) -> dict[str, str]:
    env = {
        **os.environ,
        **ports,
        "QS_DATA_DIR": str(data_dir),
        "QS_SEED_FILE": str(ROOT / "deployments" / "dev-seed.toml"),
    }
    for external in ("QS_PREFECT_API_URL", "QS_RAY_ADDRESS", "QS_STORAGE_URL", "QS_DATABASE_URL", "QS_PUBLIC_URL"):
        env.pop(external, None)
    return {**env, **(extra or {})}


@contextmanager
def running_stack(
    data_dir: Path,
    ports: dict[str, str] = TEST_PORTS,
    extra: dict[str, str] | None = None,
    timeout: float = 240,
    module: str = "deployments.stack",
) -> Iterator[str]:
    """Yield the gateway URL once /readiness answers 200; stop every process afterwards.

    Under root the embedded PostgreSQL runs as nobody, which must reach its folder in `data_dir`:
    give `data_dir` a parent anyone may traverse (`/tmp`, not pytest's private base folder).
    """
    data_dir.chmod(0o711)
    env = stack_env(data_dir, ports, extra)
    output = data_dir / "stack.out"
    with open(output, "wb") as log:
        process = subprocess.Popen(
            [str(PLATFORM_PYTHON), "-m", module], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{ports['QS_PORT']}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("stack did not become ready:\n" + output.read_text())
            if ready(url):
                break
            time.sleep(0.5)
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


# `make cluster`'s topology (deployments/cluster.py) as the tests and benchmarks start it.
CLUSTER_PORTS = {
    "QS_PORT": "28300",
    "QS_PREFECT_PORT": "24300",
    "QS_RAY_PORT": "26490",
    "QS_RAY_DASHBOARD_PORT": "28365",
    "QS_POSTGRES_PORT": "25436",
}
CLUSTER_TOPOLOGY = {"QS_CLUSTER_SECOND_GATEWAY_PORT": "28301", "QS_CLUSTER_S3_PORT": "25003"}


@contextmanager
def running_cluster(data_dir: Path, extra: dict[str, str] | None = None) -> Iterator[tuple[str, str]]:
    """Yield both gateways' URLs once both answer their readiness probe; stop everything afterwards."""
    second = f"http://127.0.0.1:{CLUSTER_TOPOLOGY['QS_CLUSTER_SECOND_GATEWAY_PORT']}"
    topology = {**CLUSTER_TOPOLOGY, **(extra or {})}
    with running_stack(data_dir, CLUSTER_PORTS, topology, timeout=360, module="deployments.cluster") as first:
        deadline = time.monotonic() + 120
        while not ready(second):
            if time.monotonic() > deadline:
                raise RuntimeError("the second gateway did not become ready:\n" + (data_dir / "stack.out").read_text())
            time.sleep(0.5)
        yield first, second


@contextmanager
def stack_dir(prefix: str) -> Iterator[Path]:
    """A data directory for `running_stack`, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def job_processes(job_id: str) -> set[int]:
    """Host pids of every process of a job: the launcher names the job's first process `job-<id>`
    (flows/launcher.py), and whatever the program starts shares its PID namespace."""

    def read(pid: str, name: str) -> str:
        try:
            return (
                os.readlink(f"/proc/{pid}/{name}")
                if name.startswith("ns/")
                else Path(f"/proc/{pid}/{name}").read_text()
            )
        except OSError:  # ended meanwhile
            return ""

    # A zombie holds nothing but its exit status: it is gone for this purpose.
    pids = [
        entry.name
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and ") Z " not in read(entry.name, "stat")
    ]
    tagged = {pid for pid in pids if read(pid, "comm").strip() == f"job-{job_id[:11]}"}
    namespaces = {read(pid, "ns/pid") for pid in tagged} - {read("self", "ns/pid"), ""}
    return {int(pid) for pid in pids if pid in tagged or read(pid, "ns/pid") in namespaces}


def manage(data_dir: Path, *args: str, extra: dict[str, str] | None = None) -> str:
    """Run the admin CLI (`python -m gateway.cli …`) against a test stack's store."""
    done = subprocess.run(
        [str(PLATFORM_PYTHON), "-m", "gateway.cli", *args],
        cwd=ROOT, env=stack_env(data_dir, TEST_PORTS, extra), check=True, capture_output=True, text=True,
    )  # fmt: skip
    return done.stdout


def add_user(data_dir: Path, name: str, token: str, extra: dict[str, str] | None = None) -> None:
    manage(data_dir, "users", "add", name, "--token", token, extra=extra)


@contextmanager
def moto_server(port: int) -> Iterator[str]:
    """A real S3-compatible server on loopback (moto's server mode), from the platform environment."""
    process = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(url, timeout=1)
                break
            except requests.RequestException:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextmanager
def extra_gateway(data_dir: Path, port: int, extra: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """One more gateway process of the stack in `data_dir` (its store, storage, Prefect and work pool)."""
    prefect = {
        "PREFECT_API_URL": f"http://127.0.0.1:{TEST_PORTS['QS_PREFECT_PORT']}/api",
        "PREFECT_PROFILES_PATH": str(data_dir / "prefect-profiles.toml"),
    }
    env = {**stack_env(data_dir, TEST_PORTS, {**prefect, **(extra or {})}), "QS_PORT": str(port)}
    command = [str(PLATFORM_PYTHON), "-m", "uvicorn", "gateway.app:create_app", "--factory", "--port", str(port)]
    with open(data_dir / f"gateway-{port}.out", "wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/liveness/", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gateway did not start:\n" + (data_dir / f"gateway-{port}.out").read_text())
            time.sleep(0.3)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def gateway_pid(url: str) -> int | None:
    """The process of the gateway that answers at `url` (uvicorn's, found by its port)."""
    port = url.rsplit(":", 1)[1].encode()
    for process in Path("/proc").iterdir():
        try:
            command = (process / "cmdline").read_bytes().split(b"\0") if process.name.isdigit() else []
        except OSError:
            continue
        if b"gateway.app:create_app" in command and port in command:
            return int(process.name)
    return None


def ready(url: str) -> bool:
    """Whether the gateway at `url` answers its readiness probe with 200."""
    try:
        return requests.get(f"{url}/readiness/", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def executor_pid(data_dir: Path) -> int | None:
    """The executor process of the stack whose data directory is `data_dir`."""
    wanted = f"QS_DATA_DIR={data_dir}".encode()
    for process in Path("/proc").iterdir():
        try:
            if not process.name.isdigit():
                continue
            command = (process / "cmdline").read_bytes().split(b"\0")
            if b"deployments.executor" in command and wanted in (process / "environ").read_bytes().split(b"\0"):
                return int(process.name)
        except OSError:
            continue
    return None
