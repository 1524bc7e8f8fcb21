"""Prefect's own way to close runs whose program is gone: flow-run heartbeats and an automation.

Each supervisor (flows/supervisor.py) sends a `prefect.flow-run.heartbeat` event, every
HEARTBEAT_SECONDS, for every run whose program it holds, whether or not an executor follows the run
(one that is gone leaves its runs to be adopted). This automation, Prefect's zombie-run detection,
makes a run Crashed when its heartbeats stop for LOST_AFTER without the run ending: its supervisor
was lost (with its node, or the Ray cluster), and the program with it. Prefect's orchestration
refuses the change for a run that has ended meanwhile.
"""

from __future__ import annotations

from datetime import timedelta

from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

from core.job_log import PROGRAM_LOST

AUTOMATION = "qiskit-serverless: lost programs"
HEARTBEAT = "prefect.flow-run.heartbeat"
HEARTBEAT_SECONDS = 10.0
LOST_AFTER = timedelta(seconds=40)  # four heartbeats missed: FAILED within a minute of the loss
ENDS = {f"prefect.flow-run.{state}" for state in ("Completed", "Failed", "Cancelled", "Crashed")}


def lost_run_automation() -> AutomationCore:
    return AutomationCore(
        name=AUTOMATION,
        description="A run whose program's supervisor stopped sending heartbeats is Crashed (FAILED).",
        enabled=True,
        trigger=EventTrigger(
            posture=Posture.Proactive,
            after={HEARTBEAT},
            expect={HEARTBEAT, *ENDS},
            match={"prefect.resource.id": "prefect.flow-run.*"},
            for_each={"prefect.resource.id"},
            threshold=1,
            within=LOST_AFTER,
        ),
        actions=[ChangeFlowRunState(name=None, state=StateType.CRASHED, message=PROGRAM_LOST, force=False)],
    )


def ensure_lost_run_automation(client: SyncPrefectClient) -> None:
    """Create the automation, or bring the one there up to this version."""
    wanted = lost_run_automation()
    found = client.read_automations_by_name(AUTOMATION)
    if found:
        client.update_automation(found[0].id, wanted)
    else:
        client.create_automation(wanted)
