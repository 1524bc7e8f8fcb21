"""HTTP routes of the file areas: a user area per function, a provider area per provider function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from gateway.access.subject import Principal
from gateway.auth import CurrentUser, DbSession
from gateway.context import ServicesDep
from gateway.files import service, streaming
from gateway.files.content_type import SNIFF_BYTES

router = APIRouter(prefix="/files", tags=["files"])
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            }
        },
    }
}
Text = Annotated[str | None, Query(max_length=255)]
Resolver = Callable[[Session, Principal, str | None, str | None], str]


def _add_routes(prefix: str, area: Resolver, label: str) -> None:
    @router.get(prefix, summary=f"List the files of the {label} area")
    def list_files(
        user: CurrentUser, session: DbSession, services: ServicesDep, function: Text = None, provider: Text = None
    ) -> dict[str, list[str]]:
        return {"results": service.list_files(services, area(session, user, function, provider))}

    @router.post(
        f"{prefix}/upload",
        summary=f"Upload a file to the {label} area (streamed to storage; overwrites)",
        openapi_extra=UPLOAD_BODY,
    )
    async def upload(
        request: Request,
        user: CurrentUser,
        session: DbSession,
        services: ServicesDep,
        function: Text = None,
        provider: Text = None,
    ) -> dict[str, str]:
        # The reference order: the file's name and type first, then access, then the bytes.
        incoming = streaming.MultipartFile(request)
        filename, head = await incoming.start(SNIFF_BYTES)
        name = service.safe_name(filename)
        service.check_type(head)
        target = await run_in_threadpool(area, session, user, function, provider)
        await streaming.store(services.storage, f"{target}/{name}", incoming, services.settings.max_file_bytes)
        return {"message": name}

    @router.get(f"{prefix}/download", summary=f"Download a file of the {label} area (streamed)")
    def download(
        user: CurrentUser,
        session: DbSession,
        services: ServicesDep,
        file: Text = None,
        function: Text = None,
        provider: Text = None,
    ) -> StreamingResponse:
        name = service.safe_name(file)
        size, chunks = service.open_download(services, area(session, user, function, provider), name)
        headers = {"Content-Length": str(size), "Content-Disposition": f'attachment; filename="{name}"'}
        return StreamingResponse(chunks, media_type="application/octet-stream", headers=headers)

    @router.delete(f"{prefix}/delete", summary=f"Delete a file of the {label} area")
    def delete(
        user: CurrentUser,
        session: DbSession,
        services: ServicesDep,
        file: Text = None,
        function: Text = None,
        provider: Text = None,
    ) -> dict[str, str]:
        name = service.safe_name(file)
        service.delete(services, area(session, user, function, provider), name)
        return {"message": "Requested file was deleted."}


_add_routes("/provider", service.provider_area, "provider")
_add_routes("", service.user_area, "user")
