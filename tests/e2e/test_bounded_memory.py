"""What no request may cost the gateway: memory in proportion to a body it refuses, or to a result
it sends. The gateway process's resident memory is sampled while the request runs."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
from types import TracebackType

from conftest import TERMINAL, Stack, upload, wait_for
from stack_process import gateway_pid

MB = 1024 * 1024


def peak_growth(stack: Stack) -> PeakGrowth:
    pid = gateway_pid(stack.url)
    assert pid is not None, "no gateway process"
    return PeakGrowth(pid)


def resident_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class PeakGrowth:
    """The most a process's resident memory grew above its start, sampled every 5 ms."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.start = self.peak = 0
        self.done = threading.Event()
        self.sampler = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakGrowth:
        self.start = self.peak = resident_bytes(self.pid)
        self.sampler.start()
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.done.set()
        self.sampler.join()

    def _sample(self) -> None:
        while not self.done.wait(0.005):
            self.peak = max(self.peak, resident_bytes(self.pid))

    @property
    def growth(self) -> int:
        return self.peak - self.start


def test_500_mb_without_a_token_get_401_and_cost_the_gateway_almost_nothing(stack: Stack) -> None:
    host, port = stack.url.removeprefix("http://").split(":")
    answer = bytearray()
    answered = threading.Event()

    def read(connection: socket.socket) -> None:  # meanwhile: a reset after the answer would drop it
        while not answered.is_set() and (chunk := connection.recv(65536)):
            answer.extend(chunk)
            head, found, body = bytes(answer).partition(b"\r\n\r\n")
            length = next(
                (line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")),
                None,
            )
            if found and length is not None and len(body) >= int(length):
                answered.set()

    with peak_growth(stack) as memory, socket.create_connection((host, int(port)), timeout=60) as sock:
        reader = threading.Thread(target=read, args=(sock,), daemon=True)
        reader.start()
        sock.sendall(
            b"POST /api/v1/jobs/files/stop HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
            b"Content-Length: 524288000\r\n\r\n"
        )
        try:
            for _ in range(500):
                if answered.is_set():
                    break  # refused: the rest is not wanted
                sock.sendall(b"[" * MB)
        except OSError:
            pass  # the gateway closed the connection
        reader.join(timeout=60)
    head, _, body = bytes(answer).partition(b"\r\n\r\n")
    assert b" 401 " in head.split(b"\r\n", 1)[0], head
    assert json.loads(body) == {"message": "Authentication credentials were not provided."}
    assert memory.growth < 50 * MB, memory.growth


def test_a_1_gb_result_is_streamed_in_bounded_memory(stack: Stack) -> None:
    client = stack.client()
    job = upload(client, "big-result", "hello").run()
    assert wait_for(job, TERMINAL) == "DONE"
    stored = stack.user_area("mockuser") / "results" / f"{job.job_id}.json"
    with stored.open("wb") as handle:  # what a program's save_result of a 1 GiB list writes
        handle.write(b"[")
        for _ in range(1024):
            handle.write(b"1," * (MB // 2))
        handle.write(b"1]")
    try:
        with peak_growth(stack) as memory:
            response = stack.get(f"/api/v1/jobs/{job.job_id}/result/", stream=True)
            assert response.status_code == 200
            received = sum(len(piece) for piece in response.iter_content(MB))
        assert received > 1024 * MB
        assert memory.growth < 100 * MB, memory.growth
    finally:
        stored.unlink()
