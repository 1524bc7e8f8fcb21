import time

from qiskit_serverless import get_arguments, save_result

seconds = get_arguments().get("seconds", 3)
print("start", time.time(), flush=True)
time.sleep(seconds)
print("end", time.time(), flush=True)
save_result({"slept": seconds})
