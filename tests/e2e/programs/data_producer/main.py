"""As the reference tutorials do: write to the user's data area at the literal path /data."""

import io
import tarfile

from qiskit_serverless import get_arguments, save_result

payload = get_arguments()["payload"].encode()
with tarfile.open("/data/out.tar", "w") as archive:
    info = tarfile.TarInfo("payload.txt")
    info.size = len(payload)
    archive.addfile(info, io.BytesIO(payload))
save_result({"written": "/data/out.tar"})
