"""For flow runs made by a schedule: seconds from each run's due time to its Running state.

    schedule_lag.py FLOW_RUN_ID...    (platform environment, PREFECT_API_URL and credentials set)

Prints one JSON line: {"due_to_running": [...]}.
"""

from __future__ import annotations

import json
import sys
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType


def main() -> None:
    lags: list[float] = []
    with get_client(sync_client=True) as client:
        for flow_run_id in sys.argv[1:]:
            run = client.read_flow_run(UUID(flow_run_id))
            running = next(s for s in client.read_flow_run_states(run.id) if s.type == StateType.RUNNING)
            assert run.expected_start_time is not None
            lags.append((running.timestamp - run.expected_start_time).total_seconds())
    print(json.dumps({"due_to_running": lags}))


if __name__ == "__main__":
    main()
