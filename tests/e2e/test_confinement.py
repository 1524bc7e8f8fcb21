"""A program is a tenant: it sees its own job and nothing of the platform (flows/sandbox.py).

A hostile program tries to read the platform's databases, source, venvs, other users' areas and job
specs, to write into the runtime, and to read platform processes' environments; every attempt fails,
while its own /data works. The reference tutorials' /data paths work on local storage and on S3, and
a program past its memory limit ends FAILED with a message naming the limit.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import requests
from conftest import LIMITS, TERMINAL, Stack, upload, wait_for
from qiskit_serverless import ServerlessClient
from stack_process import PLATFORM_PYTHON, ROOT, TEST_PORTS


def test_a_hostile_program_reaches_nothing_of_the_platform(stack: Stack, client: ServerlessClient) -> None:
    other = stack.data_dir / "storage" / "users" / "otheruser"
    other.mkdir(parents=True, exist_ok=True)
    (other / "secret.txt").write_text("other user's")
    unreadable = [
        stack.data_dir / "gateway.db",
        stack.data_dir / "prefect" / "prefect.db",
        other,
        other / "secret.txt",
        stack.data_dir / "storage" / "jobs",
        stack.data_dir / "storage" / "programs",
        ROOT / "gateway" / "app.py",
        ROOT / ".venv" / "bin" / "python",
        "/root/.bashrc",
        "/etc/shadow",
    ]
    unwritable = [ROOT / "gateway", ROOT / ".venv-runtime" / "bin", stack.data_dir]
    job = upload(client, "hostile", "hostile").run(
        unreadable=[str(path) for path in unreadable], unwritable=[str(path) for path in unwritable]
    )
    assert wait_for(job, TERMINAL) == "DONE", job.logs()
    report = job.result()
    assert report["leaks"] == []
    assert report["processes"] == [1], "only the program's own process is visible"
    assert report["uid"] != 0
    assert (report["own_data"], report["data_path"]) == ("mine", "/data")
    assert (stack.user_area() / "own.txt").read_text() == "mine", "its /data is the user's area"
    assert not (ROOT / "gateway" / "planted.txt").exists()


def test_reference_programs_write_and_read_slash_data(any_stack: Stack) -> None:
    client = any_stack.client()
    produced = upload(client, "producer-data", "data_producer").run(payload="from the producer")
    assert wait_for(produced, TERMINAL) == "DONE", produced.logs()
    consumed = upload(client, "consumer-data", "data_consumer").run()
    assert wait_for(consumed, TERMINAL) == "DONE", consumed.logs()
    assert consumed.result() == {"payload": "from the producer"}
    assert "out.tar" in client.files(client.function("producer-data"))


def test_a_program_past_its_memory_limit_fails_and_the_next_job_runs(client: ServerlessClient) -> None:
    limit = int(LIMITS["QS_JOB_MEMORY_MB"])
    hog = upload(client, "memory-hog", "memory_hog").run(megabytes=limit + 512)
    assert wait_for(hog, TERMINAL) == "ERROR"
    assert f"memory limit ({limit} MiB, QS_JOB_MEMORY_MB)" in hog.logs()
    small = client.function("memory-hog").run(megabytes=16)
    assert wait_for(small, TERMINAL) == "DONE", small.logs()
    assert "allocated 16777216" in small.logs()


def test_the_platform_ray_cluster_refuses_a_driver_without_its_token(stack: Stack, tmp_path: Path) -> None:
    """What a program could try from its sandbox (it shares the host's network): join the cluster."""
    join = f"import ray; ray.init(address='127.0.0.1:{TEST_PORTS['QS_RAY_PORT']}'); print('joined')"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # no RAY_AUTH_*, no ~/.ray/auth_token
    done = subprocess.run([str(PLATFORM_PYTHON), "-c", join], env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode != 0 and "joined" not in done.stdout
    assert "InvalidAuthToken" in done.stderr or "Authentication" in done.stderr, done.stderr[-2000:]


def test_the_prefect_api_requires_its_credentials(stack: Stack) -> None:
    api = f"http://127.0.0.1:{TEST_PORTS['QS_PREFECT_PORT']}/api"
    assert requests.get(f"{api}/health", timeout=10).status_code == 200, "probes stay open"
    assert requests.post(f"{api}/flow_runs/filter", json={}, timeout=10).status_code == 401
    wrong = requests.post(f"{api}/flow_runs/filter", json={}, auth=("admin", "guess"), timeout=10)
    assert wrong.status_code == 401
    allowed = requests.post(f"{api}/flow_runs/filter", json={"limit": 1}, auth=stack.prefect_login(), timeout=10)
    assert allowed.status_code == 200


def test_ray_tasks_of_a_program_carry_qiskit_objects(client: ServerlessClient) -> None:
    """Its `ray.init()` starts a Ray of the job's own, whose workers run the runtime with qiskit."""
    job = upload(client, "ray-fanout", "ray_fanout").run(circuits=4)
    assert wait_for(job, TERMINAL, timeout=240) == "DONE", job.logs()
    result = job.result()
    assert result["count"] == 4
    assert set(result["basis"]) <= {"cx", "rz", "sx", "x", "measure", "barrier"}


def test_the_embedded_database_requires_its_password(stack: Stack) -> None:
    """Programs share the host's loopback: the embedded PostgreSQL must not trust it."""
    connect = (
        "import sys, psycopg\n"
        "try:\n"
        f"    psycopg.connect(host='127.0.0.1', port={TEST_PORTS['QS_POSTGRES_PORT']}, user=sys.argv[1],"
        " password=sys.argv[2], dbname='prefect', connect_timeout=5)\n"
        "except psycopg.OperationalError as error:\n"
        "    print('refused', error)\n"
        "else:\n"
        "    print('connected')\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(stack.data_dir)}  # no PGPASSWORD, no ~/.pgpass

    def attempt(user: str, password: str) -> str:
        command = [str(PLATFORM_PYTHON), "-c", connect, user, password]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60).stdout

    for user, password in [("platform", ""), ("platform", "guess"), ("postgres", ""), ("nobody", "")]:
        assert attempt(user, password).startswith("refused"), (user, password)
    real = (stack.data_dir / "postgres-password").read_text().strip()
    assert attempt("platform", real).startswith("connected"), "the test itself can reach the server"
