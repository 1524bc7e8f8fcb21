"""The streamed multipart upload, through a small ASGI app over a local storage root."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from core.storage import Storage
from gateway.errors import install_error_handlers
from gateway.files import streaming

LIMIT = 3 * 1024 * 1024


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    return Storage(f"file://{tmp_path / 'root'}")


@pytest.fixture
def client(storage: Storage) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/upload")
    async def upload(request: Request) -> dict[str, object]:
        incoming = streaming.MultipartFile(request)
        name, head = await incoming.start(16)
        size = await streaming.store(storage, f"area/{name or 'unnamed'}", incoming, LIMIT)
        return {"name": name, "head": head.decode("latin-1"), "size": size}

    return TestClient(app)


def test_file_arrives_whole_with_other_fields_around(client: TestClient, storage: Storage) -> None:
    data = bytes(range(256)) * 8192  # 2 MiB, several batches
    response = client.post(
        "/upload", data={"before": "x", "after": "y"}, files={"file": ("data.bin", data, "application/octet-stream")}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"name": "data.bin", "head": data[:16].decode("latin-1"), "size": len(data)}
    assert storage.get_bytes("area/data.bin") == data


def test_short_and_empty_files(client: TestClient, storage: Storage) -> None:
    assert client.post("/upload", files={"file": ("tiny.txt", b"abc")}).json()["head"] == "abc"
    assert storage.get_bytes("area/tiny.txt") == b"abc"
    assert client.post("/upload", files={"file": ("empty.txt", b"")}).json()["size"] == 0
    assert storage.get_bytes("area/empty.txt") == b""


def test_oversize_upload_is_refused_and_the_old_file_kept(client: TestClient, storage: Storage) -> None:
    storage.put_bytes("area/big.bin", b"previous version")
    response = client.post("/upload", files={"file": ("big.bin", b"\0" * (LIMIT + 1))})
    assert response.status_code == 413
    assert response.json() == {"message": f"File is larger than {LIMIT} bytes."}
    assert storage.get_bytes("area/big.bin") == b"previous version"


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({"content-type": "application/json"}, b"{}"),
        ({"content-type": "multipart/form-data"}, b"no boundary"),
        ({"content-type": "multipart/form-data; boundary=XyZ"}, b""),
        (
            {"content-type": "multipart/form-data; boundary=XyZ"},
            b'--XyZ\r\ncontent-disposition: form-data; name="other"\r\n\r\nv\r\n--XyZ--\r\n',
        ),
    ],
)
def test_no_file_part_is_a_400(client: TestClient, headers: dict[str, str], body: bytes) -> None:
    response = client.post("/upload", headers=headers, content=body)
    assert response.status_code == 400
    assert response.json() == {"message": "A file should be uploaded."}


def test_truncated_and_garbled_bodies_are_400_and_store_nothing(client: TestClient, storage: Storage) -> None:
    head = b'--XyZ\r\ncontent-disposition: form-data; name="file"; filename="cut.bin"\r\n\r\n' + b"a" * 100
    cut = client.post("/upload", headers={"content-type": "multipart/form-data; boundary=XyZ"}, content=head)
    assert cut.status_code == 400 and cut.json() == {"message": streaming.MALFORMED}
    assert storage.get_bytes("area/cut.bin") is None
    garbled = client.post(
        "/upload", headers={"content-type": "multipart/form-data; boundary=XyZ"}, content=b"--XyZ\r\n\x00\x01:\r\r\n"
    )
    assert garbled.status_code == 400


def test_non_utf8_file_name_is_replaced_not_a_crash(client: TestClient) -> None:
    body = b'--XyZ\r\ncontent-disposition: form-data; name="file"; filename="\xff\xfe.txt"\r\n\r\nhello\r\n--XyZ--\r\n'
    response = client.post("/upload", headers={"content-type": "multipart/form-data; boundary=XyZ"}, content=body)
    assert response.status_code == 200
    assert response.json()["name"].endswith(".txt")


@pytest.mark.parametrize("where", ["name", "value"])
def test_a_part_header_past_the_cap_is_refused_not_buffered(client: TestClient, where: str) -> None:
    huge = "x" * (streaming.MAX_HEADER_BYTES + 1)
    header = f"{huge}: v" if where == "name" else f'content-disposition: form-data; name="file"; filename="{huge}"'
    body = f"--XyZ\r\n{header}\r\n\r\ndata\r\n--XyZ--\r\n".encode()
    response = client.post("/upload", content=body, headers={"content-type": "multipart/form-data; boundary=XyZ"})
    assert response.status_code == 400
    assert response.json() == {"message": streaming.HEADERS_TOO_LARGE}


def test_too_many_part_headers_are_refused(client: TestClient) -> None:
    headers = "".join(f"x-{index}: v\r\n" for index in range(streaming.MAX_HEADERS + 1))
    body = f'--XyZ\r\n{headers}content-disposition: form-data; name="file"; filename="a"\r\n\r\nd\r\n--XyZ--\r\n'
    response = client.post(
        "/upload", content=body.encode(), headers={"content-type": "multipart/form-data; boundary=XyZ"}
    )
    assert (response.status_code, response.json()) == (400, {"message": streaming.HEADERS_TOO_LARGE})
