import io
import os
import tarfile

from qiskit_serverless import get_arguments, save_result

payload = get_arguments()["payload"].encode()
with tarfile.open(os.path.join(os.environ["DATA_PATH"], "x.tar"), "w") as archive:
    info = tarfile.TarInfo("payload.txt")
    info.size = len(payload)
    archive.addfile(info, io.BytesIO(payload))
save_result({"wrote": "x.tar"})
