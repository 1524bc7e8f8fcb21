"""A multipart upload read as it arrives: the `file` part goes to storage while it is received.

Starlette's form parsing would first spool the whole body to a temporary file and only then
let it be copied to storage (two passes, the second as slow as the store). Here the parser
stops as soon as the part's name and first bytes are known, so the caller can check the name,
the content type and access before anything is written, and then pipes the rest through a
small bounded queue into an all-or-nothing storage writer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import anyio
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request

from core.storage import Storage
from gateway.errors import ApiError, bad_request

FIELD = "file"
BATCH_BYTES = 1024 * 1024  # bytes handed to the storage thread at a time
# One storage part (core/storage.WRITE_BLOCK) may wait: the body keeps arriving while the previous
# part uploads. Half of that stalled the receiver (0.6 of s3fs's own speed instead of 0.8-0.96).
QUEUED_BATCHES = 8
MALFORMED = "The upload is not a valid multipart/form-data body."
# A part's headers are buffered until complete: the parser bounds them (one line, and how many).
MAX_HEADER_BYTES = 4096
MAX_HEADERS = 8
HEADERS_TOO_LARGE = f"A part may have at most {MAX_HEADERS} headers of at most {MAX_HEADER_BYTES} bytes each."


class MultipartFile:
    """The `file` part of a multipart body, parsed incrementally from the request stream."""

    def __init__(self, request: Request) -> None:
        content_type, options = parse_options_header(request.headers.get("content-type"))
        boundary = options.get(b"boundary")
        if content_type != b"multipart/form-data" or not boundary:
            raise bad_request("A file should be uploaded.")
        try:
            self.parser = MultipartParser(
                boundary,
                {
                    "on_part_begin": self._part_begin,
                    "on_header_field": self._header_field,
                    "on_header_value": self._header_value,
                    "on_header_end": self._header_end,
                    "on_headers_finished": self._headers_finished,
                    "on_part_data": self._part_data,
                    "on_part_end": self._part_end,
                },
                max_header_count=MAX_HEADERS,
                max_header_size=MAX_HEADER_BYTES,
            )
        except (FormParserError, ValueError):
            raise bad_request(MALFORMED) from None
        self.body = request.stream()
        self.filename: str | None = None
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        self.in_file = self.found = self.done = self.ended = False
        self._field = bytearray()
        self._value = bytearray()
        self._disposition = b""

    # parser callbacks
    def _part_begin(self) -> None:
        self._disposition = b""

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        if bytes(self._field).lower() == b"content-disposition":
            self._disposition = bytes(self._value)
        self._field.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if not self.found and options.get(b"name") == FIELD.encode() and b"filename" in options:
            self.found = self.in_file = True
            self.filename = options[b"filename"].decode("utf-8", errors="replace")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self.in_file:
            self.pending.append(data[start:end])
            self.pending_bytes += end - start

    def _part_end(self) -> None:
        if self.in_file:
            self.in_file = False
            self.done = True

    async def _feed(self) -> bool:
        """Parse the next chunk of the body; False once the body has ended."""
        if self.ended:
            return False
        try:
            chunk = await self.body.__anext__()
        except StopAsyncIteration:
            self.ended = True
            return False
        except ClientDisconnect:
            raise bad_request("The upload was interrupted.") from None
        try:
            self.parser.write(chunk)
        except (FormParserError, ValueError) as error:
            raise bad_request(HEADERS_TOO_LARGE if "Maximum header" in str(error) else MALFORMED) from None
        return True

    async def start(self, head_bytes: int) -> tuple[str, bytes]:
        """The part's file name and its first bytes (fewer only if the file is shorter)."""
        while not self.done and (not self.found or self.pending_bytes < head_bytes) and await self._feed():
            pass
        if not self.found:
            raise bad_request("A file should be uploaded.")
        head = b"".join(self.pending)
        self.pending = [head]
        return self.filename or "", head[:head_bytes]

    async def content(self) -> AsyncIterator[bytes]:
        """Every byte of the part, from the first, in order."""
        while True:
            if self.pending:
                chunks, self.pending, self.pending_bytes = self.pending, [], 0
                for chunk in chunks:
                    yield chunk
            if self.done:
                return
            if not await self._feed():
                raise bad_request(MALFORMED)  # the body ended inside the part


async def store(storage: Storage, key: str, upload: MultipartFile, limit: int) -> int:
    """Pipe the part into `key`; the old object stays until the new one is complete."""
    writer = await run_in_threadpool(storage.open_writer, key)
    batches: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=QUEUED_BATCHES)

    async def drain() -> None:
        while (batch := await batches.get()) is not None:
            await run_in_threadpool(writer.write, batch)
        await run_in_threadpool(writer.commit)

    writing = asyncio.create_task(drain())
    received = 0
    try:
        batch: list[bytes] = []
        batch_bytes = 0
        async for chunk in upload.content():
            received += len(chunk)
            if received > limit:
                raise ApiError(413, f"File is larger than {limit} bytes.")
            batch.append(chunk)
            batch_bytes += len(chunk)
            if batch_bytes >= BATCH_BYTES:
                await _put(batches, writing, b"".join(batch))
                batch, batch_bytes = [], 0
        await _put(batches, writing, b"".join(batch))
        await _put(batches, writing, None)
        await writing
    except BaseException:
        # Shielded: a cancelled request (client gone) must still abort the half-written object.
        with anyio.CancelScope(shield=True):
            writing.cancel()
            await asyncio.gather(writing, return_exceptions=True)
            await run_in_threadpool(writer.discard)
        raise
    return received


async def _put(batches: asyncio.Queue[bytes | None], writing: asyncio.Task[None], item: bytes | None) -> None:
    """Queue a batch unless the writer has already failed (then raise its error)."""
    put = asyncio.ensure_future(batches.put(item))
    try:
        await asyncio.wait({put, writing}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not put.done():
            put.cancel()
    if put.cancelled() or not put.done():
        writing.result()  # raises the storage error
        raise RuntimeError("storage writer stopped early")
