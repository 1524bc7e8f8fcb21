"""`make cluster` (deployments/cluster.py): the distributed topology on loopback, as the tests start
it: PostgreSQL, Prefect, a Ray head and a second node, S3 on moto's server, two gateways and two
executors. The client's scenario goes through both gateways by turns, and a job that asks for the
second node's resource runs there, reading its arguments and writing its data area."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from conftest import TERMINAL, upload, wait_for, wait_for_log
from qiskit_serverless import ServerlessClient
from stack_process import CLUSTER_PORTS, running_cluster, stack_dir


@dataclass
class Cluster:
    gateways: tuple[str, str]
    data_dir: Path

    def client(self, which: int) -> ServerlessClient:
        return ServerlessClient(token="awesome_token", host=self.gateways[which], instance="any")


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
    with (cluster.data_dir / "prefect-profiles.toml").open("rb") as handle:
        login = tomllib.load(handle)["profiles"]["qiskit-serverless"]["PREFECT_API_AUTH_STRING"]
    prefect, auth = f"http://127.0.0.1:{CLUSTER_PORTS['QS_PREFECT_PORT']}/api", tuple(login.split(":", 1))
    tagged = {"flow_runs": {"tags": {"all_": [f"job:{job.job_id}"]}}}
    [run] = requests.post(f"{prefect}/flow_runs/filter", json=tagged, auth=auth, timeout=30).json()
    logs = requests.post(f"{prefect}/logs/filter", json={"logs": {"flow_run_id": {"any_": [run["id"]]}}}, auth=auth)
    assert any("'node-2': 1.0" in entry["message"] for entry in logs.json()), logs.text[-2000:]
    refused = requests.post(
        f"{cluster.gateways[1]}/api/v1/programs/run",
        headers={"Authorization": "Bearer awesome_token"},
        json={"title": "producer-node-2", "arguments": "{}", "config": {"resources": {"gpu": 1}}},
        timeout=60,
    )
    assert refused.status_code == 400 and "offers node-2" in refused.json()["message"]
