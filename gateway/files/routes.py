"""HTTP routes of the file areas: a user area per function, a provider area per provider function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, File, Query, UploadFile
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from gateway.auth import CurrentUser, DbSession, Principal
from gateway.context import ServicesDep
from gateway.errors import bad_request
from gateway.files import service

router = APIRouter(prefix="/files", tags=["files"])
Text = Annotated[str | None, Query(max_length=255)]
Resolver = Callable[[Session, Principal, str | None, str | None], str]


def _user(session: Session, user: Principal, function: str | None, provider: str | None) -> str:
    return service.user_area(session, user, function, provider)


def _provider(session: Session, user: Principal, function: str | None, provider: str | None) -> str:
    return service.provider_area(provider, function)


def _add_routes(prefix: str, area: Resolver, label: str) -> None:
    @router.get(prefix, summary=f"List the files of the {label} area")
    def list_files(
        user: CurrentUser, session: DbSession, services: ServicesDep, function: Text = None, provider: Text = None
    ) -> dict[str, list[str]]:
        return {"results": service.list_files(services, area(session, user, function, provider))}

    @router.post(f"{prefix}/upload", summary=f"Upload a file to the {label} area (overwrites)")
    def upload(
        user: CurrentUser,
        session: DbSession,
        services: ServicesDep,
        file: Annotated[UploadFile | None, File()] = None,
        function: Text = None,
        provider: Text = None,
    ) -> dict[str, str]:
        if file is None:
            raise bad_request("A file should be uploaded.")
        name = service.safe_name(file.filename)
        service.check_upload(services, file.file, file.size)
        target = area(session, user, function, provider)
        return {"message": service.store(services, target, name, file.file)}

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


_add_routes("/provider", _provider, "provider")
_add_routes("", _user, "user")
