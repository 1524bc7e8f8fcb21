"""What every request passes before any route runs, and before its body is read.

- Paths: `/x` and `/x/` are served alike, without redirects (the client uses both).
- Authentication first: a request that carries a body must present a valid token; without one it
  gets its 401 having cost only its headers, never the parsing of a body.
- Body caps per route: each route takes at most what it needs (a file, an artifact, arguments, a
  small JSON or form body), checked on Content-Length up front and counted as a chunked body
  arrives: past the cap, 413.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.settings import Settings
from gateway.auth import authenticated
from gateway.errors import ApiError

# Any route without a larger need: JSON or form fields. Every schema-valid body of those routes fits,
# however its text is escaped (their longest field is 50,000 characters).
SMALL_BODY = 1024 * 1024
FORM_FRAMING = 1024 * 1024  # multipart framing and the other fields beside a file or an artifact
JSON_ESCAPING = 6  # the longest JSON escape of one byte of text: \u00XX
URL_ENCODING = 3  # %XX


@dataclass(frozen=True)
class BodyCaps:
    """The largest body each route takes, by the end of its path."""

    file: int
    artifact: int
    arguments: int
    result: int

    @classmethod
    def of(cls, settings: Settings) -> BodyCaps:
        return cls(
            file=settings.max_file_bytes + FORM_FRAMING,
            artifact=settings.max_artifact_bytes + FORM_FRAMING,
            # The arguments are JSON text inside a JSON body: escaping may make them six times longer.
            arguments=JSON_ESCAPING * settings.max_arguments_bytes + SMALL_BODY,
            # The legacy result comes URL-encoded in a form: up to three bytes per byte.
            result=URL_ENCODING * settings.max_result_bytes + FORM_FRAMING,
        )

    def for_path(self, path: str) -> int:
        if path.endswith(("/files/upload", "/files/provider/upload")):
            return self.file
        if path.endswith("/programs/upload"):
            return self.artifact
        if path.endswith(("/programs/run", "/programs/validate_arguments", "/schedules")):
            return self.arguments
        if path.startswith("/api/v1/prefect/"):
            return self.arguments  # a program's flow run carries its parameters, as a run request does
        if path.startswith("/api/v1/jobs/") and path.endswith("/result"):
            return self.result  # the legacy save_result of clients up to 0.32
        return SMALL_BODY


class RequestGate:
    def __init__(self, app: ASGIApp, caps: BodyCaps) -> None:
        self.app = app
        self.caps = caps

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if len(path) > 1 and path.endswith("/"):
            path = path.rstrip("/") or "/"
            scope = {**scope, "path": path, "raw_path": path.encode()}
        headers = dict(scope["headers"])
        # With a Transfer-Encoding the server reads the body as chunked, whatever Content-Length says:
        # such a body is always authenticated first and counted as it arrives.
        chunked = b"transfer-encoding" in headers
        length = None if chunked else headers.get(b"content-length")
        if length is None and not chunked:
            await self.app(scope, receive, send)  # no body
            return
        if length is not None and not length.isdigit():
            await _reject(send, 400, "Invalid Content-Length.")
            return
        if chunked or int(length or 0) > 0:
            try:
                await authenticated(scope["app"].state.services, _text(headers.get(b"authorization")))
            except ApiError as refused:
                await _reject(send, refused.status, refused.message)
                return
        limit = self.caps.for_path(path)
        if length is not None and int(length) > limit:
            await _reject(send, 413, f"Request body is larger than {limit} bytes.")
            return
        if chunked:
            receive, send = _capped(receive, send, limit)
        await self.app(scope, receive, send)


def _text(raw: bytes | None) -> str | None:
    return raw.decode("latin-1") if raw is not None else None


def _capped(receive: Receive, send: Send, limit: int) -> tuple[Receive, Send]:
    """A body without Content-Length (chunked) is counted as it arrives; past the limit the
    client gets 413 and the app sees a disconnect (its own response is dropped)."""
    received = 0
    rejected = False
    started = False

    async def counted() -> Message:
        nonlocal received, rejected
        message = await receive()
        if message["type"] == "http.request" and not rejected:
            received += len(message.get("body", b""))
            if received > limit:
                rejected = True
                if not started:
                    await _reject(send, 413, f"Request body is larger than {limit} bytes.")
                return {"type": "http.disconnect"}
        return message

    async def guarded(message: Message) -> None:
        nonlocal started
        if not rejected:
            started = True
            await send(message)

    return counted, guarded


async def _reject(send: Send, status: int, message: str) -> None:
    body = json.dumps({"message": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
