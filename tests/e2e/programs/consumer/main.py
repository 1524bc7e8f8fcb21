import os
import tarfile

from qiskit_serverless import save_result

with tarfile.open(os.path.join(os.environ["DATA_PATH"], "x.tar")) as archive:
    payload = archive.extractfile("payload.txt").read().decode()
with open(os.path.join(os.environ["DATA_PATH"], "uploaded.txt")) as handle:
    uploaded = handle.read()
save_result({"payload": payload, "uploaded": uploaded})
