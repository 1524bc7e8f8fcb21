import time

from qiskit_serverless import Job, update_status

assert update_status(Job.MAPPING)
print("mapping", flush=True)
time.sleep(4)
