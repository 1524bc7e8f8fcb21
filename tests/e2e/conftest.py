"""End-to-end fixtures: the whole stack (Prefect server, Ray head, executor, gateway) as `make run`
starts it, on its own ports and data directory, driven over HTTP by the real qiskit-serverless client.

These tests run in the runtime environment (.venv-runtime), where the client lives.
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from qiskit_serverless import QiskitFunction, ServerlessClient
from stack_process import TEST_PORTS, add_user, moto_server, running_stack, stack_dir

# Well-formed but fake: the client's stop() then fails to build a runtime service offline and sends "null".
INSTANCE = "crn:v1:bluemix:public:quantum-computing:us-east:a/0000:1111::"
PROGRAMS = Path(__file__).parent / "programs"
TERMINAL = {"DONE", "ERROR", "CANCELED"}
MAX_FILE_BYTES = 5_000_000
MAX_ACTIVE_JOBS = 5
LIMITS = {
    "QS_MAX_FILE_BYTES": str(MAX_FILE_BYTES),
    "QS_MAX_ACTIVE_JOBS": str(MAX_ACTIVE_JOBS),
    "QS_JOB_MEMORY_MB": "2048",
}


@dataclass
class Stack:
    url: str
    data_dir: Path

    def client(self, token: str = "awesome_token") -> ServerlessClient:
        return ServerlessClient(host=self.url, token=token, instance=INSTANCE, channel="ibm_quantum_platform")

    def request(
        self,
        method: str,
        path: str,
        token: str | None = "awesome_token",
        headers: dict[str, str] | None = None,
        **kwargs: object,
    ) -> requests.Response:
        merged = {**_auth(token), **(headers or {})}
        return requests.request(method, f"{self.url}{path}", headers=merged, timeout=60, **kwargs)  # type: ignore[arg-type]

    def get(self, path: str, token: str | None = "awesome_token", **kwargs: object) -> requests.Response:
        return self.request("GET", path, token, **kwargs)  # type: ignore[arg-type]

    def post(self, path: str, token: str | None = "awesome_token", **kwargs: object) -> requests.Response:
        return self.request("POST", path, token, **kwargs)  # type: ignore[arg-type]

    def user_area(self, user: str = "mockuser") -> Path:
        return self.data_dir / "storage" / "users" / user

    def flow_run_of(self, job_id: str) -> dict[str, Any]:
        """The job's flow run in Prefect: the run tagged with the job (the job of a run started in
        Prefect has the run's id, and the run gets the tag when it is adopted)."""
        prefect = f"http://127.0.0.1:{TEST_PORTS['QS_PREFECT_PORT']}/api"
        tagged = {"flow_runs": {"tags": {"all_": [f"job:{job_id}"]}}}
        found = requests.post(f"{prefect}/flow_runs/filter", json=tagged, auth=self.prefect_login(), timeout=30)
        assert found.status_code == 200, found.text
        [run] = found.json()
        return dict(run)

    def prefect_login(self) -> tuple[str, str]:
        """The embedded Prefect server's credentials, as the operator finds them."""
        with (self.data_dir / "prefect-profiles.toml").open("rb") as handle:
            login = tomllib.load(handle)["profiles"]["qiskit-serverless"]["PREFECT_API_AUTH_STRING"]
        user, _, password = str(login).partition(":")
        return user, password


def _auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    with stack_dir("qs-e2e-") as data_dir, running_stack(data_dir, extra=LIMITS) as url:
        add_user(data_dir, "otheruser", "other_token")
        yield Stack(url=url, data_dir=data_dir)


@pytest.fixture(scope="session")
def s3_stack(stack: Stack) -> Iterator[Stack]:
    """A second gateway and executor on the same Prefect server and Ray cluster, with storage on
    `s3://` against moto's S3 server on loopback (only the missing parts are started)."""
    with stack_dir("qs-e2e-s3-") as data_dir, moto_server(25000) as endpoint:
        extra = {
            "QS_PREFECT_API_URL": f"http://127.0.0.1:{TEST_PORTS['QS_PREFECT_PORT']}/api",
            "QS_RAY_ADDRESS": f"127.0.0.1:{TEST_PORTS['QS_RAY_PORT']}",
            "QS_RAY_AUTH_TOKEN_FILE": str(stack.data_dir / "ray-auth-token"),
            "PREFECT_PROFILES_PATH": str(stack.data_dir / "prefect-profiles.toml"),
            "QS_WORK_POOL": "qiskit-serverless-s3",
            "QS_STORAGE_URL": "s3://qs-test/platform",
            "QS_S3_ENDPOINT_URL": endpoint,
            "QS_S3_KEY": "testing",
            "QS_S3_SECRET": "testing",
            "QS_S3_REGION": "us-east-1",
            "QS_POSTGRES_PORT": "25434",  # its gateway's own database
            # Shorter than the copy-back of tests/e2e/programs/many_files: the force-kill must wait for it.
            "QS_STOP_GRACE_SECONDS": "2",
            **LIMITS,
        }
        ports = {**TEST_PORTS, "QS_PORT": "28100"}
        with running_stack(data_dir, ports, extra) as url:
            add_user(data_dir, "otheruser", "other_token", extra)
            add_user(data_dir, "manyfiles", "many_files_token", extra)  # their area alone holds many files
            yield Stack(url=url, data_dir=data_dir)


@pytest.fixture(scope="session", params=["file", "s3"])
def any_stack(request: pytest.FixtureRequest) -> Stack:
    """The file-area suite runs once per storage kind."""
    return request.getfixturevalue("stack" if request.param == "file" else "s3_stack")  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def client(stack: Stack) -> ServerlessClient:
    return stack.client()


def upload(client: ServerlessClient, title: str, program_dir: str, entrypoint: str = "main.py") -> QiskitFunction:
    function = client.upload(
        QiskitFunction(title=title, entrypoint=entrypoint, working_dir=str(PROGRAMS / program_dir))
    )
    assert function is not None
    return function


def wait_for_log(job, text: str, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    """Until the job's log shows `text` (the program reached that point)."""
    deadline = time.monotonic() + timeout
    while text not in (job.logs() or ""):
        assert time.monotonic() < deadline, job.status()
        time.sleep(0.1)


def wait_for(job, statuses: set[str], timeout: float = 120) -> str:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = job.status()
        if current in statuses:
            return str(current)
        time.sleep(0.2)
    raise AssertionError(f"job {job.job_id} still {job.status()} after {timeout} s")
