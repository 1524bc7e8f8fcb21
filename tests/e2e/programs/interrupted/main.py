"""Writes a file into its data area, then waits to be stopped."""

import os
import time

with open(os.path.join(os.environ["DATA_PATH"], "partial.txt"), "w") as handle:
    handle.write("written before the stop")
print("file written, waiting", flush=True)
time.sleep(300)
