"""`make cluster`: the distributed topology, on this machine, as real processes on loopback.

What a deployment across machines runs, one process of each kind more than `make run`:
- a Prefect server on PostgreSQL (the embedded server, under the data directory) and the gateway's
  store on the same PostgreSQL;
- a Ray head, and a second Ray node joined with `ray start --address`, offering the custom resource
  `node-2` so that a run can ask for it (`config.resources`, QS_JOB_RESOURCES);
- S3 storage on moto's server;
- two gateways on two ports (any of them answers any request: put a load balancer in front);
- two executors taking runs from the same work pool.
Every process is supervised as in `make run` (a process that dies is started again). Ctrl-C stops
everything. Point it elsewhere with the same settings as `make run` (README, Going distributed).
"""

from __future__ import annotations

import json
import os
import signal
import sys

from pydantic_settings import BaseSettings, SettingsConfigDict

from core.settings import Settings
from deployments.stack import BIN, Stack, http_ok, ray_environment, serve

SECOND_NODE_RESOURCE = "node-2"


class Topology(BaseSettings):
    """What `make cluster` adds to the stack's settings (environment prefix QS_CLUSTER_)."""

    model_config = SettingsConfigDict(env_prefix="QS_CLUSTER_")

    second_gateway_port: int = 8001
    s3_port: int = 9100
    second_node_cpus: int = 2
    bucket: str = "qiskit-serverless"


def configure(topology: Topology) -> None:
    """The platform's settings for this topology, unless set already: its own data directory,
    storage on the S3 server, and the second node's resource offered to runs."""
    defaults = {
        "QS_DATA_DIR": ".data-cluster",
        "QS_STORAGE_URL": f"s3://{topology.bucket}/platform",
        "QS_S3_ENDPOINT_URL": f"http://127.0.0.1:{topology.s3_port}",
        "QS_S3_KEY": "cluster",
        "QS_S3_SECRET": "cluster-secret",
        "QS_S3_REGION": "us-east-1",
        "QS_JOB_RESOURCES": json.dumps([SECOND_NODE_RESOURCE]),
    }
    for name, value in defaults.items():
        os.environ.setdefault(name, value)


class Cluster(Stack):
    def __init__(self, settings: Settings, topology: Topology) -> None:
        super().__init__(settings)
        self.topology = topology

    def start(self) -> None:
        endpoint = f"http://127.0.0.1:{self.topology.s3_port}"
        moto = [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.topology.s3_port)]
        self._spawn("s3", moto, service=True)
        self._wait("s3", lambda: http_ok(endpoint), 60)
        super().start()
        settings = self.settings
        self._spawn(
            "ray-node-2",
            [
                str(BIN / "ray"), "start", "--block",
                "--address", settings.ray_cluster,
                "--node-ip-address", "127.0.0.1",
                "--num-cpus", str(self.topology.second_node_cpus),
                "--resources", json.dumps({SECOND_NODE_RESOURCE: 1000}),
                "--disable-usage-stats",
            ],
            ray_environment(settings),
            service=True,
        )  # fmt: skip
        self._spawn("executor-2", [sys.executable, "-m", "deployments.executor"], stop_signal=signal.SIGINT)
        port = self.topology.second_gateway_port
        self._spawn(
            "gateway-2",
            [sys.executable, "-m", "uvicorn", "gateway.app:create_app", "--factory",
             "--host", settings.host, "--port", str(port), "--no-access-log"],
            {**self.env, "QS_PORT": str(port)},
        )  # fmt: skip
        self._wait("gateway-2", lambda: http_ok(f"http://{settings.host}:{port}/readiness"), 120)


def main() -> None:
    topology = Topology()
    configure(topology)
    settings = Settings()
    cluster = Cluster(settings, topology)

    def banner() -> str:
        first = f"http://{settings.host}:{settings.port}"
        second = f"http://{settings.host}:{topology.second_gateway_port}"
        return (
            "\nQiskit Serverless on Prefect is running as a cluster on this machine.\n"
            f"  API:        {first}/api/v1/ and {second}/api/v1/ (put a load balancer in front)\n"
            f"  Prefect UI: {settings.prefect_url.removesuffix('/api')}  (login: {cluster.prefect_login})\n"
            f"  Ray:        head {settings.ray_cluster} and a second node offering '{SECOND_NODE_RESOURCE}'\n"
            f"  Storage:    {settings.storage_root} on S3 at {settings.s3_endpoint_url}\n"
            f"  Logs:       {cluster.logs}\n"
            "Press Ctrl-C to stop everything."
        )

    serve(cluster, banner)


if __name__ == "__main__":
    main()
