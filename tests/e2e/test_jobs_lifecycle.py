"""The gold path and the failure paths of one job, through the real client against the real stack."""

from __future__ import annotations

import os
import time

import pytest
from conftest import TERMINAL, Stack, upload, wait_for
from qiskit import QuantumCircuit
from qiskit_serverless import ServerlessClient
from qiskit_serverless.exception import QiskitServerlessException
from stack_process import job_processes


def bell() -> QuantumCircuit:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure_all()
    return circuit


def test_gold_path(client: ServerlessClient) -> None:
    function = upload(client, "gold", "gold")
    job = function.run(circuit=bell(), name="bell")

    seen_live = False
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = job.status()
        if status in TERMINAL:
            break
        logs = job.logs()
        if status == "RUNNING" and "DELAY STARTS" in logs and "DELAY ENDS" not in logs:
            seen_live = True
        time.sleep(0.5)
    assert seen_live, "the line printed before the sleep never showed while RUNNING"
    assert job.status() == "DONE"
    assert job.result() == {"qubits": 2, "ops": {"h": 1, "cx": 1, "measure": 2, "barrier": 1}, "name": "bell"}
    logs = job.logs()
    assert logs.endswith("DELAY ENDS\nthe last line\n")
    assert "INFO: public: circuit has 2 qubits" in logs
    assert "[PUBLIC]" not in logs and "INFO: private: provider detail" in logs


def test_import_error_fails_with_traceback(client: ServerlessClient) -> None:
    job = upload(client, "broken", "import_error").run()
    assert wait_for(job, TERMINAL) == "ERROR"
    with pytest.raises(QiskitServerlessException) as raised:
        job.result()
    assert "ModuleNotFoundError: No module named 'module_that_does_not_exist'" in str(raised.value)
    assert "Traceback (most recent call last)" in job.logs()


def test_send_error_records_one_error_event(client: ServerlessClient) -> None:
    job = upload(client, "errs", "send_error").run()
    assert wait_for(job, TERMINAL) == "ERROR"
    events = job.events(type="ERROR")
    assert len(events) == 1
    assert events[0].data["code"] == "1000"
    assert events[0].data["message"] == "calibration failed"
    assert events[0].data["exception"] == "ValueError"
    with pytest.raises(QiskitServerlessException, match="calibration failed"):
        job.result()
    statuses = [event.data["status"] for event in job.events() if event.event_type == "STATUS_CHANGE"]
    assert statuses[0] == "FAILED" and statuses[-1] == "QUEUED"


def test_update_status_shows_sub_status(client: ServerlessClient) -> None:
    job = upload(client, "mapper", "sub_status").run()
    assert wait_for(job, {"RUNNING: MAPPING"} | TERMINAL, timeout=60) == "RUNNING: MAPPING"
    assert wait_for(job, TERMINAL) == "DONE"
    assert any(event.event_type == "SUB_STATUS_CHANGE" for event in job.events())


def _wait_file(path, timeout: float = 120) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text().strip()):
        assert time.monotonic() < deadline, f"{path} never written"
        time.sleep(0.1)


def test_stop_kills_program_and_its_ray_task(stack: Stack, client: ServerlessClient) -> None:
    """The program starts a Ray of its own inside its sandbox; a stop ends it, its task and every
    process the job started."""
    job = upload(client, "stoppable", "stoppable").run()
    _wait_file(stack.user_area() / f"{job.job_id}.program.pid")
    _wait_file(stack.user_area() / f"{job.job_id}.task.pid")
    assert wait_for(job, {"RUNNING"}) == "RUNNING"
    namespace = {pid: os.readlink(f"/proc/{pid}/ns/pid") for pid in job_processes(job.job_id)}
    inside = {pid for pid, ns in namespace.items() if ns != os.readlink("/proc/self/ns/pid")}
    assert len(inside) >= 3, "the program, its Ray and the task it started"
    assert len({namespace[pid] for pid in inside}) == 1, "all in the job's own PID namespace"

    message = client.stop(job.job_id, service=None)
    assert message.startswith("Job has been stopped.")
    assert message.endswith("Serverless job was running and has been stopped.")
    assert wait_for(job, TERMINAL, timeout=30) == "CANCELED"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and job_processes(job.job_id):
        time.sleep(0.1)
    assert not job_processes(job.job_id), "a process of the job survived the stop"
    assert "sleeping" in job.logs()
    assert client.stop(job.job_id, service=None).startswith("Job already in terminal state.")


def test_two_jobs_run_concurrently(client: ServerlessClient) -> None:
    function = upload(client, "rendezvous", "sleeper")
    tag = str(time.time())
    first = function.run(me=f"a{tag}", other=f"b{tag}")
    second = function.run(me=f"b{tag}", other=f"a{tag}")
    assert wait_for(first, TERMINAL) == "DONE", first.logs()
    assert wait_for(second, TERMINAL) == "DONE", second.logs()
    assert first.result() == {"met": f"b{tag}"} and second.result() == {"met": f"a{tag}"}
