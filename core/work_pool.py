"""The platform's Prefect work pool: every program deployment belongs to it and the executor serves it."""

from __future__ import annotations

from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectAlreadyExists

FLOW_NAME = "run_program"  # the flow every program deployment runs (flows/run_program.py)


def ensure_work_pool(client: SyncPrefectClient, name: str) -> None:
    try:
        client.create_work_pool(
            WorkPoolCreate(
                name=name,
                type="process",
                description="Qiskit Serverless programs, executed by the platform's executor on Ray.",
            )
        )
    except ObjectAlreadyExists:
        pass
