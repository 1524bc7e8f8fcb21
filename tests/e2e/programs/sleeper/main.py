"""Rendezvous with another job: both succeed only if they run at the same time."""

import os
import time

from qiskit_serverless import get_arguments, save_result

arguments = get_arguments()
area = os.environ["DATA_PATH"]
open(os.path.join(area, f"{arguments['me']}.here"), "w").close()
deadline = time.time() + 90
while not os.path.exists(os.path.join(area, f"{arguments['other']}.here")):
    if time.time() > deadline:
        raise SystemExit(f"{arguments['other']} never ran while {arguments['me']} was running")
    time.sleep(0.1)
save_result({"met": arguments["other"]})
