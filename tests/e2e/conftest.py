"""End-to-end fixtures: the whole stack (Prefect server, Ray head, executor, gateway) as `make run`
starts it, on its own ports and data directory, driven over HTTP by the real qiskit-serverless client.

These tests run in the runtime environment (.venv-runtime), where the client lives.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from qiskit_serverless import QiskitFunction, ServerlessClient

# Well-formed but fake: the client's stop() then fails to build a runtime service offline and sends "null".
INSTANCE = "crn:v1:bluemix:public:quantum-computing:us-east:a/0000:1111::"
ROOT = Path(__file__).resolve().parents[2]
PLATFORM_PYTHON = ROOT / ".venv" / "bin" / "python"
PROGRAMS = Path(__file__).parent / "programs"
TERMINAL = {"DONE", "ERROR", "CANCELED"}


@dataclass
class Stack:
    url: str
    data_dir: Path

    def client(self, token: str = "awesome_token") -> ServerlessClient:
        return ServerlessClient(host=self.url, token=token, instance=INSTANCE, channel="ibm_quantum_platform")

    def request(
        self, method: str, path: str, token: str | None = "awesome_token", headers: dict[str, str] | None = None, **kwargs: object
    ) -> requests.Response:
        merged = {**_auth(token), **(headers or {})}
        return requests.request(method, f"{self.url}{path}", headers=merged, timeout=60, **kwargs)  # type: ignore[arg-type]

    def get(self, path: str, token: str | None = "awesome_token", **kwargs: object) -> requests.Response:
        return self.request("GET", path, token, **kwargs)  # type: ignore[arg-type]

    def post(self, path: str, token: str | None = "awesome_token", **kwargs: object) -> requests.Response:
        return self.request("POST", path, token, **kwargs)  # type: ignore[arg-type]

    def user_area(self, user: str = "mockuser") -> Path:
        return self.data_dir / "storage" / "users" / user


def _auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # Ports outside Ray's worker port range (10002-19999).
    data_dir = tmp_path_factory.mktemp("stack")
    env = {
        **os.environ,
        "QS_DATA_DIR": str(data_dir),
        "QS_PORT": "28000",
        "QS_PREFECT_PORT": "24200",
        "QS_RAY_PORT": "26390",
        "QS_RAY_DASHBOARD_PORT": "28265",
        "QS_DEV_USER": "mockuser",
        "QS_DEV_TOKEN": "awesome_token",
    }
    env.pop("QS_PREFECT_API_URL", None)
    env.pop("QS_RAY_ADDRESS", None)
    log = open(data_dir / "stack.out", "wb")
    process = subprocess.Popen(
        [str(PLATFORM_PYTHON), "-m", "deployments.stack"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = "http://127.0.0.1:28000"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert process.poll() is None, (data_dir / "stack.out").read_text()
        try:
            if requests.get(f"{url}/readiness/", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            pass
        time.sleep(0.5)
    else:
        pytest.fail("stack did not become ready:\n" + (data_dir / "stack.out").read_text())
    subprocess.run(
        [str(PLATFORM_PYTHON), "-m", "gateway.users", "add", "otheruser", "--token", "other_token"],
        cwd=ROOT, env=env, check=True, capture_output=True,
    )  # fmt: skip
    try:
        yield Stack(url=url, data_dir=data_dir)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def client(stack: Stack) -> ServerlessClient:
    return stack.client()


def upload(client: ServerlessClient, title: str, program_dir: str, entrypoint: str = "main.py") -> QiskitFunction:
    function = client.upload(QiskitFunction(title=title, entrypoint=entrypoint, working_dir=str(PROGRAMS / program_dir)))
    assert function is not None
    return function


def wait_for(job, statuses: set[str], timeout: float = 120) -> str:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = job.status()
        if current in statuses:
            return str(current)
        time.sleep(0.2)
    raise AssertionError(f"job {job.job_id} still {job.status()} after {timeout} s")
