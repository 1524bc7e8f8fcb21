"""A job's log read back from storage, in either of its two forms.

On local storage (and for logs written before logs came in parts) the log is one file,
`core.layout.job_logs`. On object storage the executor writes it as numbered parts
(`core.layout.log_part`) and deletes the oldest once the newer ones hold the cap
(flows/log_sink.py): a part number above 1 at the front means older output was dropped.
"""

from __future__ import annotations

from typing import NamedTuple

from core import layout
from core.job_log import truncation_notice
from core.storage import Storage


class StoredPart(NamedTuple):
    number: int
    path: str  # the filesystem path, as the listing names it
    size: int


def log_parts(storage: Storage, log_key: str) -> list[StoredPart]:
    """The log's parts in storage, oldest first (none for a single-file log)."""
    folder = storage.path(layout.log_parts_folder(log_key))
    try:
        # A fresh listing: the part being written grows, and another process deletes old ones.
        entries = storage.fs.ls(folder, detail=True, refresh=True)
    except FileNotFoundError:
        return []
    finally:
        # Not kept: a long-lived gateway would otherwise hold a listing of every log it ever read.
        storage.fs.invalidate_cache(folder)
    parts = []
    for entry in entries:
        number = layout.log_part_number(str(entry["name"]))
        if entry.get("type") == "file" and number is not None:
            parts.append(StoredPart(number, str(entry["name"]), int(entry["size"])))
    return sorted(parts)


def read_log(storage: Storage, job_id: str, limit: int) -> str | None:
    """The newest at most `limit` bytes of the job's log, from a whole line, the truncation notice
    first when older output was left out; None when the job has no log."""
    key = layout.job_logs(job_id)
    tail = storage.read_tail(key, limit)
    if tail is None:
        tail = _tail_of_parts(storage, key, limit)
    if tail is None:
        return None
    data, cut = tail
    text = data.decode("utf-8", errors="replace")
    if cut:
        text = text.split("\n", 1)[1] if "\n" in text else text
        text = truncation_notice(limit) + text
    return text


def _tail_of_parts(storage: Storage, log_key: str, limit: int) -> tuple[bytes, bool] | None:
    parts = log_parts(storage, log_key)
    if not parts:
        return None
    # Newest first, only as many as the listing says hold `limit` bytes; a gap in the numbers means
    # the writer is deleting older parts right now, which are then left out.
    wanted: list[StoredPart] = []
    held = 0
    for part in reversed(parts):
        if held >= limit or (wanted and part.number != wanted[-1].number - 1):
            break
        wanted.append(part)
        held += part.size
    # One request for them all: s3fs fetches them concurrently.
    contents = storage.fs.cat([part.path for part in wanted], on_error="omit")
    pieces: list[bytes] = []
    for part in wanted:
        piece = contents.get(part.path)
        if piece is None:  # deleted since the listing: so is everything older
            break
        pieces.append(piece)
    if not pieces:
        return None
    data = b"".join(reversed(pieces))
    oldest = wanted[len(pieces) - 1].number
    return data[max(0, len(data) - limit) :], oldest > 1 or len(data) > limit
