import time

for index in range(40):
    print(f"tick {index} {time.time():.4f}", flush=True)
    time.sleep(0.1)
