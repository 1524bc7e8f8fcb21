import time

print("idling until stopped", flush=True)
time.sleep(300)
