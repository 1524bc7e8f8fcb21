"""A Prefect flow of a user's own that runs platform programs as tasks (flows/program_tasks.py).

    program_flow.py GATEWAY_URL TOKEN    (platform environment, PREFECT_API_URL and credentials set)

Prints one JSON line: the hello program's result, and the status a failing program raised with.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from prefect import flow

from flows.program_tasks import ProgramRunFailed, run_program


@flow(name="uses-platform-programs")
def uses_programs(host: str, token: str) -> dict[str, Any]:
    greeting = run_program("hello-from-flow", {"name": "flow"}, host=host, token=token)
    try:
        run_program("fails-from-flow", host=host, token=token)
        failed = None
    except ProgramRunFailed as error:
        failed = {"status": error.status, "logged": "first attempt fails" in str(error)}
    return {"greeting": greeting, "failed": failed}


if __name__ == "__main__":
    print(json.dumps(uses_programs(sys.argv[1], sys.argv[2])))
