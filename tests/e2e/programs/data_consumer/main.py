"""Reads what another job left at /data/out.tar, as the reference tutorials do."""

import tarfile

from qiskit_serverless import save_result

with tarfile.open("/data/out.tar") as archive:
    payload = archive.extractfile("payload.txt").read().decode()
save_result({"payload": payload})
