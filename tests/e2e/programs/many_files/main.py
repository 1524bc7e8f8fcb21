"""Writes many files into its data area, says so, and ends a moment later."""

import os
import time

for index in range(int(os.environ.get("FILES", "800"))):
    with open(os.path.join(os.environ["DATA_PATH"], f"many-{index:04d}.txt"), "w") as handle:
        handle.write(f"file {index}\n")
print("files written", flush=True)
time.sleep(1)
