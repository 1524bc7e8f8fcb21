"""What an uploaded file is, judged from its first bytes (never its name), and whether it is allowed.

A small signature table in the spirit of libmagic, which the reference gateway uses:
known binary formats by their magic numbers, then text (JSON, CSV/plain, markup,
scripts), then unrecognised binary as application/octet-stream.
"""

from __future__ import annotations

import json

SNIFF_BYTES = 2048
ALLOWED = frozenset(
    {
        "application/x-tar",
        "application/gzip",
        "application/json",
        "application/octet-stream",
        "application/zip",
        "text/plain",
        "text/csv",
    }
)

SIGNATURES: list[tuple[bytes, str]] = [
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"\x7fELF", "application/x-executable"),
    (b"\x1f\x8b", "application/gzip"),
    (b"PK\x03\x04", "application/zip"),
    (b"PK\x05\x06", "application/zip"),
    (b"BZh", "application/x-bzip2"),
    (b"\xfd7zXZ\x00", "application/x-xz"),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (b"Rar!\x1a\x07", "application/x-rar"),
    (b"SQLite format 3\x00", "application/vnd.sqlite3"),
    (b"\xca\xfe\xba\xbe", "application/x-java-applet"),
    (b"OggS", "audio/ogg"),
    (b"ID3", "audio/mpeg"),
    (b"fLaC", "audio/flac"),
    (b"\x00\x00\x01\x00", "image/vnd.microsoft.icon"),
]


def sniff(head: bytes) -> str:
    head = head[:SNIFF_BYTES]
    if head[257:262] == b"ustar":
        return "application/x-tar"
    for signature, mime in SIGNATURES:
        if head.startswith(signature):
            return mime
    if head[:4] == b"RIFF" and head[8:12] in (b"WEBP", b"WAVE", b"AVI "):
        return {b"WEBP": "image/webp", b"WAVE": "audio/x-wav", b"AVI ": "video/x-msvideo"}[head[8:12]]
    if head[4:8] == b"ftyp":
        return "video/mp4"
    # Two-byte signatures also begin ordinary text, so they count only with binary bytes after them.
    if head[:2] == b"BM" and len(head) > 14 and head[14] in (12, 40, 52, 56, 108, 124):
        return "image/bmp"
    if head[:2] == b"MZ" and b"\x00" in head[:64]:
        return "application/x-dosexec"
    text = _as_text(head)
    if text is None:
        return "application/octet-stream"
    return _text_kind(text)


def _as_text(head: bytes) -> str | None:
    if b"\x00" in head:
        return None
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start >= len(head) - 3:  # a multi-byte character cut by the sniff window
            return head[: error.start].decode("utf-8")
        return None


def _text_kind(text: str) -> str:
    stripped = text.lstrip()
    lowered = stripped[:256].lower()
    if lowered.startswith(("<!doctype html", "<html")):
        return "text/html"
    if lowered.startswith("<?xml") or lowered.startswith("<svg"):
        return "image/svg+xml" if "<svg" in lowered else "text/xml"
    if stripped.startswith("#!"):
        return "text/x-shellscript" if "sh" in stripped.split("\n", 1)[0] else "text/x-script"
    if stripped[:1] in ("{", "["):
        try:
            json.loads(text)
            return "application/json"
        except ValueError:
            return "text/plain"
    return "text/plain"


def allowed(head: bytes) -> bool:
    return sniff(head) in ALLOWED
