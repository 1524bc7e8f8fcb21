"""The baseline: a plain Prefect flow served by a default process worker."""

from prefect import flow


@flow(name="bench-baseline")
def hello() -> None:
    print("hello")
