"""A provider function: public and private log lines, the user area and the provider area, and
what its own callback token may see of the user who runs it (only its own job)."""

import os

from qiskit_serverless import (
    Job,
    ServerlessClient,
    get_arguments,
    get_logger,
    get_provider_logger,
    save_result,
    update_status,
)

arguments = get_arguments()
get_logger().info("public hello %s", arguments.get("name"))
get_provider_logger().info("private detail for the provider")
print("unprefixed third-party output", flush=True)

user_area = os.environ["DATA_PATH"]
provider_area = os.environ["FUNCTION_DATA_PATH"]
with open(os.path.join(user_area, "mine.txt"), "w") as handle:
    handle.write(f"written for {arguments.get('name')}")
with open(os.path.join(provider_area, "model.json")) as handle:
    model = handle.read()
with open(os.path.join(provider_area, "last-run.txt"), "w") as handle:
    handle.write(f"last run by {arguments.get('name')}")

as_the_user = ServerlessClient(
    host=os.environ["ENV_JOB_GATEWAY_HOST"],
    token=os.environ["ENV_JOB_GATEWAY_TOKEN"],
    instance=os.environ.get("ENV_JOB_GATEWAY_INSTANCE"),
    channel=os.environ["QISKIT_IBM_CHANNEL"],
)
save_result(
    {
        "trial": os.environ["ENV_ACCESS_TRIAL"],
        "model": model,
        "name": arguments.get("name"),
        "callback": update_status(Job.MAPPING),  # its own job: allowed
        "sees_functions": [function.title for function in as_the_user.functions()],
        "sees_jobs": [job.job_id for job in as_the_user.jobs(limit=0)],
    }
)
