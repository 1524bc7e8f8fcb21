"""The request gate: authentication and each route's body cap come before any body is read."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from core.settings import Settings
from gateway import db, directory
from gateway.read_cache import ReadCache
from gateway.request_gate import SMALL_BODY, BodyCaps, RequestGate

TOKEN = "a-valid-token"
SETTINGS = Settings(max_file_bytes=10_000_000, max_artifact_bytes=5_000_000, max_arguments_bytes=100_000)


class Recorder:
    """The app behind the gate: records what reached it and reads the whole body."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.body = b""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.paths.append(scope["path"])
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            self.body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


@pytest.fixture
def services(tmp_path: Path) -> Any:
    database = db.Database(f"sqlite:///{tmp_path / 'gate.db'}")
    database.create_schema()
    with database.session() as session:
        directory.add_user(session, "alice", TOKEN)
        session.commit()
    yield SimpleNamespace(database=database, reads=ReadCache())
    database.dispose()


def call(
    services: Any,
    path: str,
    headers: dict[str, str],
    chunks: list[bytes] | None = None,
) -> tuple[int, dict[str, Any], Recorder, int]:
    """Send a POST through the gate; returns status, answer, the app and how many body reads happened."""
    app = Recorder()
    gate = RequestGate(app, BodyCaps.of(SETTINGS))
    pending = list(chunks or [])
    reads = 0

    async def receive() -> Message:
        nonlocal reads
        reads += 1
        if not pending:
            return {"type": "http.disconnect"}
        chunk = pending.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "headers": [(key.lower().encode(), value.encode()) for key, value in headers.items()],
        "app": SimpleNamespace(state=SimpleNamespace(services=services)),
    }
    asyncio.run(gate(scope, receive, send))
    status = sent[0]["status"]
    body = b"".join(message.get("body", b"") for message in sent[1:])
    return status, json.loads(body or b"{}"), app, reads


def test_a_body_without_a_token_is_refused_before_it_is_read(services: Any) -> None:
    huge = {"content-length": str(500 * 1024 * 1024)}
    status, answer, app, reads = call(services, "/api/v1/jobs/files/stop", huge)
    assert (status, answer) == (401, {"message": "Authentication credentials were not provided."})
    assert (reads, app.paths) == (0, [])
    status, answer, app, reads = call(services, "/api/v1/files/upload", {**huge, "authorization": "Bearer wrong-one"})
    assert (status, answer) == (401, {"message": "Invalid token."})
    assert (reads, app.paths) == (0, [])


def test_each_route_takes_at_most_what_it_needs(services: Any) -> None:
    auth = {"authorization": f"Bearer {TOKEN}"}
    caps = BodyCaps.of(SETTINGS)
    for path, cap in (
        ("/api/v1/jobs/0000/stop", SMALL_BODY),
        ("/api/v1/programs/run", caps.arguments),
        ("/api/v1/programs/upload", caps.artifact),
        ("/api/v1/files/upload", caps.file),
        ("/api/v1/files/provider/upload", caps.file),
    ):
        status, answer, app, reads = call(services, path, {**auth, "content-length": str(cap + 1)})
        assert (status, answer, reads) == (413, {"message": f"Request body is larger than {cap} bytes."}, 0), path
        status, _, app, _ = call(services, path, {**auth, "content-length": "2"}, [b"{}"])
        assert (status, app.body) == (200, b"{}"), path
    assert SMALL_BODY < caps.arguments < caps.artifact < caps.file


def test_a_chunked_body_is_counted_as_it_arrives(services: Any) -> None:
    auth = {"authorization": f"Bearer {TOKEN}", "transfer-encoding": "chunked"}
    chunks = [b"x" * 256 * 1024] * 5  # 1.25 MiB, past the small cap
    status, answer, app, reads = call(services, "/api/v1/jobs/0000/stop", auth, chunks)
    assert (status, answer) == (413, {"message": f"Request body is larger than {SMALL_BODY} bytes."})
    assert reads <= 5 and len(app.body) <= SMALL_BODY + 256 * 1024, "reading stops at the cap"


def test_paths_with_and_without_a_trailing_slash_are_one(services: Any) -> None:
    auth = {"authorization": f"Bearer {TOKEN}", "content-length": "2"}
    _, _, app, _ = call(services, "/api/v1/programs/run/", auth, [b"{}"])
    assert app.paths == ["/api/v1/programs/run"]


def test_a_caller_checked_by_the_gate_is_known_to_the_route(services: Any) -> None:
    call(services, "/api/v1/programs/run", {"authorization": f"Bearer {TOKEN}", "content-length": "2"}, [b"{}"])
    assert services.reads.principals.get(directory.hash_token(TOKEN)).name == "alice"


def test_a_chunked_body_with_a_content_length_too_is_authenticated_and_counted(services: Any) -> None:
    """The server reads it as chunked: a Content-Length of 0 must not let it pass unchecked."""
    smuggled = {"content-length": "0", "transfer-encoding": "chunked"}
    status, answer, app, reads = call(services, "/api/v1/programs/run", smuggled, [b"x" * 1024])
    assert (status, answer, reads, app.paths) == (
        401,
        {"message": "Authentication credentials were not provided."},
        0,
        [],
    )
    auth = {**smuggled, "content-length": "1", "authorization": f"Bearer {TOKEN}"}
    status, answer, _, _ = call(services, "/api/v1/jobs/0000/stop", auth, [b"x" * 256 * 1024] * 5)
    assert (status, answer) == (413, {"message": f"Request body is larger than {SMALL_BODY} bytes."})
