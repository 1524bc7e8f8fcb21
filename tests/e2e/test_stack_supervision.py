"""`make run` (deployments/stack.py) starts again a process of the stack that dies, instead of
stopping everything: here its gateway is killed with SIGKILL and answers again."""

from __future__ import annotations

import os
import signal
import time

from conftest import Stack
from stack_process import gateway_pid, ready


def test_a_killed_gateway_is_started_again(stack: Stack) -> None:
    killed = gateway_pid(stack.url)
    assert killed is not None
    os.kill(killed, signal.SIGKILL)
    deadline = time.monotonic() + 120
    while not ready(stack.url):
        assert time.monotonic() < deadline, (stack.data_dir / "stack.out").read_text()[-3000:]
        time.sleep(0.5)
    assert gateway_pid(stack.url) not in (None, killed)
    assert "gateway restarted." in (stack.data_dir / "stack.out").read_text()
    assert stack.client().functions() is not None, "the new gateway serves the client"
