"""Prefect decides what runs when: the executor takes runs through the work pool's scheduling."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests
from conftest import TERMINAL, Stack, upload, wait_for
from qiskit_serverless import ServerlessClient
from stack_process import TEST_PORTS

POOL = f"http://127.0.0.1:{TEST_PORTS['QS_PREFECT_PORT']}/api/work_pools/qiskit-serverless"


@pytest.fixture
def one_at_a_time(stack: Stack) -> Iterator[None]:
    """The work pool's concurrency limit at 1, as an operator sets it in the UI or the CLI."""
    auth = stack.prefect_login()
    response = requests.patch(POOL, json={"concurrency_limit": 1}, auth=auth, timeout=10)
    assert response.status_code == 204, response.text
    try:
        yield
    finally:
        requests.patch(POOL, json={"concurrency_limit": None}, auth=auth, timeout=10)


@pytest.mark.usefixtures("one_at_a_time")
def test_a_work_pool_limit_of_one_runs_jobs_one_after_the_other(client: ServerlessClient) -> None:
    function = upload(client, "timed", "timed")
    first = function.run(seconds=3)
    second = function.run(seconds=3)
    seen_waiting = False
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and {first.status(), second.status()} & {"QUEUED", "INITIALIZING"}:
        statuses = {first.status(), second.status()}
        seen_waiting |= statuses == {"RUNNING", "QUEUED"}
        time.sleep(0.2)
    assert wait_for(first, TERMINAL) == "DONE", first.logs()
    assert wait_for(second, TERMINAL) == "DONE", second.logs()
    a, b = sorted([first.result(), second.result()], key=lambda times: times["started"])
    assert b["started"] >= a["ended"], f"they overlapped: {a} {b}"
    assert seen_waiting, "one job waited QUEUED while the other ran"
