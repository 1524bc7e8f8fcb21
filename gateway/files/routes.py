"""HTTP routes of the file areas: a user area per function, a provider area per provider function.

No `from __future__ import annotations` here: the routes' annotations name the per-area
dependency defined inside `_add_routes`, so they must be evaluated where they are written.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from gateway.auth import CurrentUser
from gateway.context import DbSession, ServicesDep
from gateway.files import service

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


def _add_routes(prefix: str, provider_area: bool, label: str) -> None:
    def area_query(function: Text = None, provider: Text = None) -> service.AreaQuery:
        return service.AreaQuery(function, provider, provider_area)

    AreaOf = Annotated[service.AreaQuery, Depends(area_query)]

    @router.get(prefix, summary=f"List the files of the {label} area")
    def list_files(user: CurrentUser, session: DbSession, services: ServicesDep, query: AreaOf) -> dict[str, list[str]]:
        return {"results": service.list_files(services, service.resolve(session, user, query))}

    @router.post(
        f"{prefix}/upload",
        summary=f"Upload a file to the {label} area (streamed to storage; overwrites)",
        openapi_extra=UPLOAD_BODY,
    )
    async def upload(
        request: Request, user: CurrentUser, session: DbSession, services: ServicesDep, query: AreaOf
    ) -> dict[str, str]:
        return {"message": await service.upload(request, services, session, user, query)}

    @router.get(f"{prefix}/download", summary=f"Download a file of the {label} area (streamed)")
    def download(
        user: CurrentUser, session: DbSession, services: ServicesDep, query: AreaOf, file: Text = None
    ) -> StreamingResponse:
        area = service.resolve(session, user, query)
        session.close()  # no database connection is held while the bytes move
        name = service.safe_name(file)
        size, chunks = service.open_download(services, area, name)
        headers = {"Content-Length": str(size), "Content-Disposition": f'attachment; filename="{name}"'}
        return StreamingResponse(chunks, media_type="application/octet-stream", headers=headers)

    @router.delete(f"{prefix}/delete", summary=f"Delete a file of the {label} area")
    def delete(
        user: CurrentUser, session: DbSession, services: ServicesDep, query: AreaOf, file: Text = None
    ) -> dict[str, str]:
        service.delete(services, service.resolve(session, user, query), service.safe_name(file))
        return {"message": "Requested file was deleted."}


_add_routes("/provider", True, "provider")
_add_routes("", False, "user")
