"""A flow that waits until its job is stopped."""

import time

from prefect import flow


@flow
def waits() -> None:
    print("inside the flow", flush=True)
    time.sleep(600)


waits()
