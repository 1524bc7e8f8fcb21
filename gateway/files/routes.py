"""HTTP routes of the file areas: a user area per function, a provider area per provider function.

No `from __future__ import annotations` here: the routes' annotations name the per-area
dependency defined inside `_add_routes`, so they must be evaluated where they are written.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from core.layout import PART_PREFIX
from gateway.auth import CurrentUser
from gateway.context import DbSession, ServicesDep
from gateway.files import service
from gateway.files.content_type import ALLOWED
from gateway.openapi import REQUIRED

router = APIRouter(prefix="/files", tags=["files"])
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    # OpenAPI 3.1's spelling of a file part (`format: binary` is the 3.0 one).
                    "properties": {"file": {"type": "string", "contentMediaType": "application/octet-stream"}},
                    "required": ["file"],
                },
            }
        },
        # Not an `encoding.contentType`: the part's own Content-Type is ignored, its bytes decide.
        "description": "The `file` part's type is judged from its first bytes, never from its name or Content-Type: "
        f"{', '.join(sorted(ALLOWED))} (any unrecognised binary) are accepted; images, PDFs, executables, "
        "HTML/XML, scripts, audio, video and other archives are refused (400). Its filename is reduced like the "
        "`file` query parameter of the downloads.",
    }
}
DOWNLOAD: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The file's bytes",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        "headers": {"Content-Disposition": {"schema": {"type": "string"}}},
    }
}
Text = Annotated[str | None, Query(max_length=255)]
# Checked by the services (their own 400 messages, as the reference gateway's); documented only.
_Required = Annotated[str | None, Query(max_length=255, json_schema_extra={REQUIRED: True, "minLength": 1})]
# service.safe_name: the basename (after the last / or \) keeps [A-Za-z0-9_.-]; at least one of them must be
# other than '.', and the result may not start with the storage's in-progress prefix.
_DROPPED = "[^A-Za-z0-9_.\\-/\\\\]*"
_NOT_PART = "".join(_DROPPED + ("\\." if character == "." else character) for character in PART_PREFIX)
FileName = Annotated[
    str | None,
    Query(
        max_length=255,
        description="Reduced to its basename with only `A-Za-z0-9_.-` kept.",
        json_schema_extra={
            REQUIRED: True,
            "pattern": f"^(?:[\\s\\S]*[/\\\\])?(?!{_NOT_PART})[^/\\\\]*[A-Za-z0-9_-][^/\\\\]*$",
        },
    ),
]


def _add_routes(prefix: str, provider_area: bool, label: str) -> None:
    Provider = _Required if provider_area else Text

    def area_query(function: _Required = None, provider: Provider = None) -> service.AreaQuery:  # type: ignore[valid-type]
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

    @router.get(
        f"{prefix}/download",
        summary=f"Download a file of the {label} area (streamed)",
        response_class=StreamingResponse,
        responses=DOWNLOAD,
    )
    def download(
        user: CurrentUser, session: DbSession, services: ServicesDep, query: AreaOf, file: FileName = None
    ) -> StreamingResponse:
        area = service.resolve(session, user, query)
        session.close()  # no database connection is held while the bytes move
        name = service.safe_name(file)
        size, chunks = service.open_download(services, area, name)
        headers = {"Content-Length": str(size), "Content-Disposition": f'attachment; filename="{name}"'}
        return StreamingResponse(chunks, media_type="application/octet-stream", headers=headers)

    @router.delete(f"{prefix}/delete", summary=f"Delete a file of the {label} area")
    def delete(
        user: CurrentUser, session: DbSession, services: ServicesDep, query: AreaOf, file: FileName = None
    ) -> dict[str, str]:
        service.delete(services, service.resolve(session, user, query), service.safe_name(file))
        return {"message": "Requested file was deleted."}


_add_routes("/provider", True, "provider")
_add_routes("", False, "user")
