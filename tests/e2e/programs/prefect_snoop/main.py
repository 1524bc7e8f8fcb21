"""A program that uses its Prefect client to reach beyond its own job: each attempt's HTTP status.

It also asks for a flow-run filter that, passed as it is, would match every run; and it sends
task-run events over Prefect's event stream: one in a flow run of its own, one naming another job's
run, and one in its own run whose payload names the other job's run (Prefect's recorder would take
the payload's word for it). It reports what came back and the task-run ids it used.
"""

import asyncio
import uuid
from uuid import UUID

from prefect import flow, runtime
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.events import Event
from prefect.events.clients import PrefectEventsClient
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError
from qiskit_serverless import get_arguments, save_result

other_run = UUID(get_arguments()["other_flow_run_id"])
attempts = {
    "read another job's flow run": lambda client: client.read_flow_run(other_run),
    "read another job's logs": lambda client: client.read_logs(
        log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[other_run]))
    ),
    "list deployments": lambda client: client.read_deployments(),
    "list work pools": lambda client: client.read_work_pools(),
    "read a variable": lambda client: client.read_variable_by_name("anything"),
    "list block documents": lambda client: client.read_block_documents(),
    "cancel another job's run": lambda client: client.delete_flow_run(other_run),
}
statuses = {}
with get_client(sync_client=True) as client:
    for name, attempt in attempts.items():
        try:
            attempt(client)
            statuses[name] = 200
        except ObjectNotFound as missing:
            statuses[name] = missing.http_exc.status_code if missing.http_exc else 404
        except PrefectHTTPStatusError as error:
            statuses[name] = error.response.status_code


@flow
def own_flow() -> str:
    return runtime.flow_run.id


def task_run_event(task_run_id: str, flow_run_id: str, payload_flow_run_id: str | None = None) -> Event:
    state = {"type": "COMPLETED", "name": "Completed", "message": "", "state_details": {}}
    return Event(
        event="prefect.task-run.Completed",
        resource={
            "prefect.resource.id": f"prefect.task-run.{task_run_id}",
            "prefect.resource.name": "sent",
            "prefect.orchestration": "client",  # what Prefect's task-run recorder records
        },
        related=[{"prefect.resource.id": f"prefect.flow-run.{flow_run_id}", "prefect.resource.role": "flow-run"}],
        payload={
            "intended": {"from": None, "to": "COMPLETED"},
            "initial_state": None,
            "validated_state": {**state, "data": None},
            "task_run": {
                "name": "sent",
                "task_key": "sent",
                "dynamic_key": task_run_id,
                "run_count": 1,
                **({"flow_run_id": payload_flow_run_id} if payload_flow_run_id else {}),
            },
        },
    )


async def send(events: list[Event]) -> None:
    async with PrefectEventsClient() as client:
        for each in events:
            await client.emit(each)


own_run, own_task, foreign_task, posing_task = own_flow(), *(str(uuid.uuid4()) for _ in range(3))
widened = {"flow_runs": {"operator": "or_", "state": {"type": {"any_": ["COMPLETED", "RUNNING"]}}}}
with get_client(sync_client=True) as client:
    found_by_widened_filter = [run["id"] for run in client._client.post("/flow_runs/filter", json=widened).json()]
sent = [
    task_run_event(own_task, own_run),
    task_run_event(foreign_task, str(other_run)),
    task_run_event(posing_task, own_run, payload_flow_run_id=str(other_run)),
]
asyncio.run(send(sent))
save_result(
    {
        "statuses": statuses,
        "found_by_widened_filter": found_by_widened_filter,
        "own_run": str(own_run),
        "own_task_run": own_task,
        "foreign_task_run": foreign_task,
        "posing_task_run": posing_task,
    }
)
