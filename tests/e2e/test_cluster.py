"""`make cluster` (deployments/cluster.py): the distributed topology on loopback, as the tests start
it: PostgreSQL, Prefect, a Ray head and a second node, S3 on moto's server, two gateways and two
executors. The client's scenario goes through both gateways by turns, and a job that asks for the
second node's resource runs there, reading its arguments and writing its data area."""

from __future__ import annotations

import os
import signal
import time
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import TERMINAL, upload, wait_for, wait_for_log
from qiskit_serverless import ServerlessClient
from stack_process import CLUSTER_PORTS, gateway_pid, ready, running_cluster, stack_dir


@dataclass
class Cluster:
    gateways: tuple[str, str]
    data_dir: Path

    def client(self, which: int) -> ServerlessClient:
        return ServerlessClient(token="awesome_token", host=self.gateways[which], instance="any")

    def login(self) -> tuple[str, str]:
        with (self.data_dir / "prefect-profiles.toml").open("rb") as handle:
            login = tomllib.load(handle)["profiles"]["qiskit-serverless"]["PREFECT_API_AUTH_STRING"]
        user, _, password = str(login).partition(":")
        return user, password

    def prefect(self, path: str, body: dict[str, Any]) -> Any:
        """The operator's view: the cluster's Prefect API with its credentials."""
        prefect = f"http://127.0.0.1:{CLUSTER_PORTS['QS_PREFECT_PORT']}/api"
        answer = requests.post(f"{prefect}/{path}", json=body, auth=self.login(), timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.json()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with stack_dir("qs-e2e-cluster-") as data_dir, running_cluster(data_dir) as gateways:
        yield Cluster(gateways, data_dir)


def test_the_client_scenario_goes_through_either_gateway(cluster: Cluster, tmp_path: Path) -> None:
    a, b = cluster.client(0), cluster.client(1)
    upload(a, "hello-cluster", "hello")
    job = b.function("hello-cluster").run()
    assert wait_for(a.job(job.job_id), TERMINAL) == "DONE", job.logs()
    assert b.job(job.job_id).result() == {"hello": "world"}
    assert job.job_id in [listed.job_id for listed in a.jobs()]

    note = tmp_path / "note.txt"
    note.write_text("across gateways")
    b.file_upload(str(note), b.function("hello-cluster"))
    assert "note.txt" in a.files(a.function("hello-cluster"))

    upload(b, "steady-cluster", "steady")
    running = a.function("steady-cluster").run(seconds=300)
    wait_for_log(running, "started", timeout=120)
    b.job(running.job_id).stop()
    assert wait_for(a.job(running.job_id), TERMINAL) == "CANCELED"


def test_a_job_asking_for_the_second_nodes_resource_runs_there(cluster: Cluster) -> None:
    client = cluster.client(1)
    upload(client, "producer-node-2", "data_producer")
    answer = requests.post(
        f"{cluster.gateways[0]}/api/v1/programs/run",
        headers={"Authorization": "Bearer awesome_token"},
        json={
            "title": "producer-node-2",
            "arguments": '{"payload": "made on node 2"}',
            "config": {"resources": {"node-2": 1}},
        },
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    job = client.job(answer.json()["id"])
    assert wait_for(job, TERMINAL, timeout=180) == "DONE", job.logs()
    assert job.result() == {"written": "/data/out.tar"}
    assert "out.tar" in client.files(client.function("producer-node-2"))
    # Where its task ran, as its flow run's Prefect logs say (only the second node offers node-2).
    [run] = cluster.prefect("flow_runs/filter", {"flow_runs": {"tags": {"all_": [f"job:{job.job_id}"]}}})
    logs = cluster.prefect("logs/filter", {"logs": {"flow_run_id": {"any_": [run["id"]]}}})
    assert any("'node-2': 1.0" in entry["message"] for entry in logs), logs[-5:]
    refused = requests.post(
        f"{cluster.gateways[1]}/api/v1/programs/run",
        headers={"Authorization": "Bearer awesome_token"},
        json={"title": "producer-node-2", "arguments": "{}", "config": {"resources": {"gpu": 1}}},
        timeout=60,
    )
    assert refused.status_code == 400 and "offers node-2" in refused.json()["message"]


def test_a_gateway_killed_during_a_burst_loses_no_accepted_job(cluster: Cluster) -> None:
    """kill -9 the second gateway while 50 submissions come in: each one answered 2xx runs exactly
    once (the other gateway dispatches what the dead one recorded), and make cluster starts it again."""
    client = cluster.client(1)
    upload(client, "hello-burst", "hello")
    function = client.function("hello-burst")
    doomed = gateway_pid(cluster.gateways[1])
    assert doomed is not None

    def submit(index: int) -> tuple[int, str | None]:
        if index == 15:
            os.kill(doomed, signal.SIGKILL)
        try:
            return index, function.run(name=f"burst-{index}").job_id
        except Exception:  # refused by the dying gateway: never accepted
            return index, None

    with ThreadPoolExecutor(8) as pool:
        accepted = {index: job_id for index, job_id in pool.map(submit, range(50)) if job_id is not None}
    assert 0 < len(accepted) < 50, "the kill landed during the burst"
    survivor = cluster.client(0)
    for index, job_id in accepted.items():
        job = survivor.job(job_id)
        assert wait_for(job, TERMINAL, timeout=300) == "DONE", job.logs()
        assert job.result() == {"hello": f"burst-{index}"}
    for job_id in accepted.values():
        runs = cluster.prefect("flow_runs/filter", {"flow_runs": {"tags": {"all_": [f"job:{job_id}"]}}})
        assert len(runs) == 1, f"job {job_id} has {len(runs)} flow runs"
    deadline = time.monotonic() + 120
    while not ready(cluster.gateways[1]):
        assert time.monotonic() < deadline, "make cluster did not start the killed gateway again"
        time.sleep(0.5)


def executor_holding(cluster: Cluster, job_id: str) -> int:
    """The pid of the executor that claimed the job's run (its Pending state names it)."""
    [run] = cluster.prefect("flow_runs/filter", {"flow_runs": {"tags": {"all_": [f"job:{job_id}"]}}})
    states = requests.get(
        f"http://127.0.0.1:{CLUSTER_PORTS['QS_PREFECT_PORT']}/api/flow_run_states/",
        params={"flow_run_id": run["id"]},
        auth=cluster.login(),
        timeout=30,
    ).json()
    [claim] = [state["message"] for state in states if state["type"] == "PENDING"]
    return int(claim.rstrip(".").rsplit("-", 1)[1])


def test_an_executor_killed_outright_leaves_the_other_executors_jobs_alone(cluster: Cluster) -> None:
    """kill -9 one executor: the job the other one runs goes on to SUCCEEDED (the killed one, started
    again, leaves it alone); a job the killed one ran ends FAILED within a minute."""
    client = cluster.client(0)
    upload(client, "steady-executors", "steady")
    jobs = [client.function("steady-executors").run(seconds=45) for _ in range(6)]
    for job in jobs:
        wait_for_log(job, "started", timeout=120)
    holders = {job.job_id: executor_holding(cluster, job.job_id) for job in jobs}
    assert len(set(holders.values())) == 2, f"both executors run jobs: {holders}"
    killed = holders[jobs[0].job_id]
    os.kill(killed, signal.SIGKILL)
    killed_at = time.monotonic()
    for job in jobs:
        if holders[job.job_id] == killed:
            assert wait_for(job, TERMINAL, timeout=120) == "ERROR"
            assert time.monotonic() - killed_at < 60 + 15, "closed within a minute (and a poll)"
        else:
            assert wait_for(job, TERMINAL, timeout=180) == "DONE", job.logs()
            assert job.result() == {"worked": 45}
