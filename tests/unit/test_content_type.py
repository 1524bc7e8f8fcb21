import gzip
import io
import json
import zipfile

import pytest
from archives import tar_of

from gateway.files.content_type import allowed, sniff


def tar_bytes() -> bytes:
    return tar_of({"a.txt": b"hi"})


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", "hi")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "content,mime",
    [
        (tar_bytes(), "application/x-tar"),
        (gzip.compress(b"hello"), "application/gzip"),
        (zip_bytes(), "application/zip"),
        (json.dumps({"a": [1, 2]}).encode(), "application/json"),
        (b"a,b\n1,2\n", "text/plain"),
        (b"just some words\n", "text/plain"),
        (b"BMW is a car brand\n", "text/plain"),
        (bytes(range(256)) * 4, "application/octet-stream"),
    ],
)
def test_allowed_kinds(content: bytes, mime: str) -> None:
    assert sniff(content) == mime
    assert allowed(content)


@pytest.mark.parametrize(
    "content,mime",
    [
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 32, "image/png"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 32, "image/jpeg"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "application/pdf"),
        (b"\x7fELF\x02\x01\x01" + b"\x00" * 32, "application/x-executable"),
        (b"<!DOCTYPE html><html></html>", "text/html"),
        (b"#!/bin/sh\nrm -rf /\n", "text/x-shellscript"),
    ],
)
def test_refused_kinds(content: bytes, mime: str) -> None:
    assert sniff(content) == mime
    assert not allowed(content)


def test_name_does_not_matter_only_bytes() -> None:
    # The sniffer never sees a name: a PNG called data.json is still a PNG.
    assert not allowed(b"\x89PNG\r\n\x1a\n" + b"{}")
