import os
import time

with open(os.path.join(os.environ["DATA_PATH"], f"{os.environ['ENV_JOB_ID_GATEWAY']}.pid"), "w") as handle:
    handle.write(str(os.getpid()))
print("sleeping", flush=True)
time.sleep(300)
