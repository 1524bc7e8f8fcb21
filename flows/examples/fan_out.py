"""Example: a Prefect flow that fans out to several platform programs at once and combines their
results, each program a task (flows/program_tasks.py).

    QS_GATEWAY_URL=http://127.0.0.1:8000 QS_GATEWAY_TOKEN=... \\
        .venv/bin/python -m flows.examples.fan_out sampler-a sampler-b sampler-c

The gateway's address and token come from the environment, never from the flow's parameters
(those show in the Prefect UI). Cancelling the flow run stops the jobs still running.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from prefect import flow

from flows.program_tasks import run_program


@flow(name="fan-out-programs")
def fan_out(programs: list[str], arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run every program at once with the same arguments; their results by title."""
    runs = {title: run_program.submit(title, arguments) for title in programs}
    return {title: run.result() for title, run in runs.items()}


if __name__ == "__main__":
    print(json.dumps(fan_out(sys.argv[1:])))
