"""File throughput benchmark: a 100 MB file through the gateway vs s3fs directly, on moto's S3 server.

    .venv/bin/python bench/files.py [megabytes]      (make bench runs it)

Prints upload and download MB/s both ways, their ratio, and the gateway's peak RSS growth
while streaming (sampled from /proc every 10 ms).
"""

from __future__ import annotations

import io
import os
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

import requests
import s3fs

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "e2e"))
from stack_process import gateway_pid, moto_server, running_stack, stack_dir  # noqa: E402

HEADERS = {"Authorization": "Bearer awesome_token"}
BUCKET = "qs-bench"


class PeakRss:
    """Samples a process's resident memory in the background."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = self.base = self.current()
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def current(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.current())
            time.sleep(0.01)

    def stop(self) -> int:
        self.running = False
        self.thread.join()
        return self.peak - self.base


def main() -> None:
    megabytes = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    payload = os.urandom(megabytes * 1024 * 1024)
    with tempfile.TemporaryDirectory(prefix="qs-files-bench-") as temp, moto_server(25500) as endpoint:
        extra = {
            "QS_STORAGE_URL": f"s3://{BUCKET}/platform",
            "QS_S3_ENDPOINT_URL": endpoint,
            "QS_S3_KEY": "bench",
            "QS_S3_SECRET": "bench",
        }
        source = Path(temp) / "big.bin"
        source.write_bytes(payload)
        with stack_dir("qs-bench-files-") as data_dir, running_stack(data_dir, extra=extra) as url:
            artifact = io.BytesIO()
            with tarfile.open(fileobj=artifact, mode="w") as archive:
                info = tarfile.TarInfo("main.py")
                archive.addfile(info, io.BytesIO(b""))
            requests.post(
                f"{url}/api/v1/programs/upload/",
                headers=HEADERS,
                data={"title": "bench-files", "entrypoint": "main.py"},
                files={"artifact": ("artifact.tar", artifact.getvalue())},
                timeout=60,
            ).raise_for_status()
            params = {"function": "bench-files"}
            pid = gateway_pid(url)
            assert pid is not None, "no gateway process"
            rss = PeakRss(pid)

            start = time.monotonic()
            with open(source, "rb") as handle:
                response = requests.post(
                    f"{url}/api/v1/files/upload/", headers=HEADERS, params=params,
                    files={"file": ("big.bin", handle)}, timeout=600,
                )  # fmt: skip
            response.raise_for_status()
            gateway_up = megabytes / (time.monotonic() - start)
            up_growth = rss.stop()

            rss = PeakRss(pid)
            start = time.monotonic()
            received = 0
            with requests.get(
                f"{url}/api/v1/files/download", headers=HEADERS, params={**params, "file": "big.bin"},
                stream=True, timeout=600,
            ) as response:  # fmt: skip
                response.raise_for_status()
                for chunk in response.iter_content(1024 * 1024):
                    received += len(chunk)
            gateway_down = megabytes / (time.monotonic() - start)
            down_growth = rss.stop()
            assert received == len(payload)

        fs = s3fs.S3FileSystem(key="bench", secret="bench", endpoint_url=endpoint)
        start = time.monotonic()
        fs.put_file(str(source), f"{BUCKET}/direct/big.bin")
        direct_up = megabytes / (time.monotonic() - start)
        start = time.monotonic()
        fs.get_file(f"{BUCKET}/direct/big.bin", str(Path(temp) / "back.bin"))
        direct_down = megabytes / (time.monotonic() - start)

    print(f"\n== File throughput, {megabytes} MB, storage s3:// on moto's S3 server (this machine) ==")
    for label, gateway, direct in (("upload", gateway_up, direct_up), ("download", gateway_down, direct_down)):
        print(f"{label:<8} gateway {gateway:7.1f} MB/s  s3fs direct {direct:7.1f} MB/s  ratio {gateway / direct:4.2f}")
    for label, growth in (("upload", up_growth), ("download", down_growth)):
        print(f"gateway peak RSS growth during {label}: {growth / 1024 / 1024:.1f} MB")


if __name__ == "__main__":
    main()
