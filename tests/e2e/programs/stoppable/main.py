import os
import time

import ray

data = os.environ["DATA_PATH"]
job = os.environ["ENV_JOB_ID_GATEWAY"]
with open(os.path.join(data, f"{job}.program.pid"), "w") as handle:
    handle.write(str(os.getpid()))

ray.init()


@ray.remote(num_cpus=0)
def spin(path):
    with open(path, "w") as handle:
        handle.write(str(os.getpid()))
    time.sleep(300)


reference = spin.remote(os.path.join(data, f"{job}.task.pid"))
print("sleeping", flush=True)
ray.get(reference)
