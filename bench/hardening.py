"""What refused bodies and huge results cost the gateway (issue: hardening), on local storage.

    .venv/bin/python bench/hardening.py      (make bench runs it)

Prints, for a 500 MB body sent without a token, the time to its 401 and the gateway's peak RSS
growth; and for a 1 GiB result read back through `GET /jobs/{id}/result/`, the MB/s and the
gateway's peak RSS growth (sampled from /proc every 10 ms).
"""

from __future__ import annotations

import io
import socket
import sys
import tarfile
import threading
import time
from pathlib import Path

import requests
from files import HEADERS, PeakRss

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "e2e"))
from stack_process import gateway_pid, running_stack, stack_dir  # noqa: E402

MB = 1024 * 1024
HELLO = b"from qiskit_serverless import save_result\nsave_result({'hello': 'world'})\n"


def refused_body(url: str, megabytes: int) -> tuple[float, bool]:
    """Send `megabytes` of JSON without a token; seconds to the answer, and whether it was a 401."""
    host, port = url.removeprefix("http://").split(":")
    answer = bytearray()
    answered = threading.Event()

    def read(connection: socket.socket) -> None:
        while chunk := connection.recv(65536):
            answer.extend(chunk)
            if b"\r\n\r\n" in answer and answer.rstrip().endswith(b"}"):
                answered.set()
                return

    with socket.create_connection((host, int(port)), timeout=60) as sock:
        reader = threading.Thread(target=read, args=(sock,), daemon=True)
        reader.start()
        start = time.monotonic()
        sock.sendall(
            f"POST /api/v1/jobs/files/stop HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
            f"Content-Length: {megabytes * MB}\r\n\r\n".encode()
        )
        try:
            for _ in range(megabytes):
                if answered.is_set():
                    break
                sock.sendall(b"[" * MB)
        except OSError:
            pass
        reader.join(timeout=60)
        return time.monotonic() - start, b" 401 " in bytes(answer).split(b"\r\n", 1)[0]


def main() -> None:
    with stack_dir("qs-bench-hardening-") as data_dir, running_stack(data_dir) as url:
        pid = gateway_pid(url)
        assert pid is not None
        rss = PeakRss(pid)
        seconds, refused = refused_body(url, 500)
        body_growth = rss.stop()

        artifact = io.BytesIO()
        with tarfile.open(fileobj=artifact, mode="w") as archive:
            info = tarfile.TarInfo("main.py")
            info.size = len(HELLO)
            archive.addfile(info, io.BytesIO(HELLO))
        requests.post(
            f"{url}/api/v1/programs/upload/", headers=HEADERS, data={"title": "bench-result", "entrypoint": "main.py"},
            files={"artifact": ("artifact.tar", artifact.getvalue())}, timeout=60,
        ).raise_for_status()  # fmt: skip
        job = requests.post(
            f"{url}/api/v1/programs/run/", headers=HEADERS, json={"title": "bench-result"}, timeout=60
        ).json()["id"]
        while requests.get(f"{url}/api/v1/jobs/{job}/", headers=HEADERS, timeout=60).json()["status"] != "SUCCEEDED":
            time.sleep(0.2)
        with open(data_dir / "storage" / "users" / "mockuser" / "results" / f"{job}.json", "wb") as result:
            result.write(b"[")
            for _ in range(1024):
                result.write(b"1," * (MB // 2))
            result.write(b"1]")
        rss = PeakRss(pid)
        start, received = time.monotonic(), 0
        with requests.get(f"{url}/api/v1/jobs/{job}/result/", headers=HEADERS, stream=True, timeout=600) as response:
            response.raise_for_status()
            for chunk in response.iter_content(MB):
                received += len(chunk)
        elapsed = time.monotonic() - start
        result_growth = rss.stop()

    print("\n== Hardening: what a refused body and a huge result cost the gateway ==")
    print(f"500 MB body without a token: {'401' if refused else 'NOT 401'} after {seconds:.3f} s, "
          f"gateway peak RSS growth {body_growth / MB:.1f} MB")  # fmt: skip
    rate = received / MB / elapsed
    print(f"1 GiB result read back: {rate:.0f} MB/s, gateway peak RSS growth {result_growth / MB:.1f} MB")


if __name__ == "__main__":
    main()
