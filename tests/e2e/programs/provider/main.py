"""A provider function: public and private log lines, the user area and the provider area."""

import os

from qiskit_serverless import get_arguments, get_logger, get_provider_logger, save_result

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
save_result({"trial": os.environ["ENV_ACCESS_TRIAL"], "model": model, "name": arguments.get("name")})
