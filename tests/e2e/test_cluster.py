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
from stack_process import CLUSTER_PORTS, CLUSTER_TOPOLOGY, add_user, gateway_pid, ready, running_cluster, stack_dir


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
        add_user(data_dir, "otheruser", "other_token", {**CLUSTER_PORTS, **CLUSTER_TOPOLOGY})
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
    """The pid of the executor that claimed the job's run last (its Pending state names it)."""
    [run] = cluster.prefect("flow_runs/filter", {"flow_runs": {"tags": {"all_": [f"job:{job_id}"]}}})
    states = requests.get(
        f"http://127.0.0.1:{CLUSTER_PORTS['QS_PREFECT_PORT']}/api/flow_run_states/",
        params={"flow_run_id": run["id"]},
        auth=cluster.login(),
        timeout=30,
    ).json()
    claims = [
        state["message"] for state in sorted(states, key=lambda state: state["timestamp"]) if state["type"] == "PENDING"
    ]
    return int(claims[-1].rstrip(".").rsplit("-", 2)[1])  # executor-<host>-<pid>-<suffix>


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill-9"])
def test_an_executor_stopped_or_killed_loses_no_job(cluster: Cluster, stop: signal.Signals) -> None:
    """SIGTERM or kill -9 one of the two executors while 10 jobs run (two users, 5 each: the
    per-user limit): its programs run on under its supervisor, and their runs are adopted (by the
    other executor, or by the stopped one started again); every job ends SUCCEEDED, each program
    having run once."""
    users = [cluster.client(0), ServerlessClient(token="other_token", host=cluster.gateways[1], instance="any")]
    title = f"steady-executors-{stop.name.lower()}"
    programs = [upload(user, title, "steady") for user in users]
    jobs = [programs[index % 2].run(seconds=30) for index in range(10)]
    for job in jobs:
        wait_for_log(job, "started", timeout=120)
    holders = {job.job_id: executor_holding(cluster, job.job_id) for job in jobs}
    stopped = holders[jobs[0].job_id]
    os.kill(stopped, stop)
    for job in jobs:
        assert wait_for(job, TERMINAL, timeout=180) == "DONE", job.logs()
        assert job.result() == {"worked": 30}
        assert job.logs().count("started") == 1
        now = executor_holding(cluster, job.job_id)
        # The stopped executor's runs were adopted by a live one; the other's were left alone.
        expected = f"not {stopped}" if holders[job.job_id] == stopped else str(holders[job.job_id])
        assert (now != stopped) if holders[job.job_id] == stopped else now == holders[job.job_id], (now, expected)


def second_node_pid() -> int:
    """The `ray start --block` process of the cluster's second Ray node."""
    address = f"127.0.0.1:{CLUSTER_PORTS['QS_RAY_PORT']}".encode()
    for process in Path("/proc").iterdir():
        try:
            command = (process / "cmdline").read_bytes().split(b"\0") if process.name.isdigit() else []
        except OSError:
            continue
        if b"--block" in command and address in command and any(b"node-2" in part for part in command):
            return int(process.name)
    raise AssertionError("no second Ray node")


def test_a_lost_node_fails_its_job_naming_the_node(cluster: Cluster) -> None:
    """Stop the second Ray node while a job placed on it runs: within a minute the job ends FAILED
    with a message naming that node, and the next job runs."""
    client = cluster.client(0)
    upload(client, "steady-lost-node", "steady")
    answer = requests.post(
        f"{cluster.gateways[0]}/api/v1/programs/run",
        headers={"Authorization": "Bearer awesome_token"},
        json={"title": "steady-lost-node", "arguments": '{"seconds": 300}', "config": {"resources": {"node-2": 1}}},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    job = client.job(answer.json()["id"])
    wait_for_log(job, "started", timeout=120)
    [run] = cluster.prefect("flow_runs/filter", {"flow_runs": {"tags": {"all_": [f"job:{job.job_id}"]}}})
    logs = cluster.prefect("logs/filter", {"logs": {"flow_run_id": {"any_": [run["id"]]}}})
    [node] = [entry["message"].split()[3] for entry in logs if entry["message"].startswith("On Ray node ")]

    os.kill(second_node_pid(), signal.SIGTERM)
    lost_at = time.monotonic()
    assert wait_for(job, TERMINAL, timeout=120) == "ERROR", job.logs()
    assert time.monotonic() - lost_at < 60
    with pytest.raises(Exception) as failed:
        job.result()
    assert f"node ID {node}" in str(failed.value), str(failed.value)

    after = client.function("steady-lost-node").run(seconds=1)
    assert wait_for(after, TERMINAL, timeout=120) == "DONE", after.logs()
