"""Request paths and body sizes, before any route runs: `/x` and `/x/` alike, and no body past its cap."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class PathNormalizer:
    """Serve `/x` and `/x/` alike without redirects (the client uses both), and cap body sizes."""

    def __init__(self, app: ASGIApp, max_body: int, max_file_body: int) -> None:
        self.app = app
        self.max_body = max_body
        self.max_file_body = max_file_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if len(path) > 1 and path.endswith("/"):
                scope = {**scope, "path": path.rstrip("/") or "/", "raw_path": path.rstrip("/").encode()}
            limit = self.max_file_body if "/files/" in scope["path"] + "/" else self.max_body
            length = dict(scope["headers"]).get(b"content-length")
            if length is not None and (not length.isdigit() or int(length) > limit):
                await _reject(send, 413, f"Request body is larger than {limit} bytes.")
                return
            if length is None:
                await self.app(scope, *_capped(receive, send, limit))
                return
        await self.app(scope, receive, send)


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
