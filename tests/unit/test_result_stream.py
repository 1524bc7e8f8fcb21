"""A result is sent as one JSON string built piece by piece, equal to encoding it whole."""

from __future__ import annotations

import json

import pytest

from gateway.jobs.service import _json_string

SAMPLES = [
    b"",
    b'{"counts": {"00": 512, "11": 512}}',
    '{"text": "h\u00e9llo w\u00f6rld \u2713 \U0001f600", "quote": "\\"", "nl": "\\n"}'.encode(),
    b"\x00\x01\x1f control and \xff\xfe invalid bytes",
]


@pytest.mark.parametrize("data", SAMPLES)
@pytest.mark.parametrize("piece", [1, 2, 3, 7, 1024])
def test_pieces_encode_like_the_whole(data: bytes, piece: int) -> None:
    chunks = (data[start : start + piece] for start in range(0, len(data), piece))
    streamed = b"".join(_json_string(chunks))
    assert streamed == json.dumps(data.decode("utf-8", errors="replace"), ensure_ascii=False).encode()
    assert json.loads(streamed) == data.decode("utf-8", errors="replace")
