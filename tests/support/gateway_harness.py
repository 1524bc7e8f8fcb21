"""The gateway in-process for service tests: the real app, store and local storage, the fake Prefect."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from archives import tar_of
from fake_orchestrator import FakeOrchestrator
from fastapi.testclient import TestClient
from prefect.client.schemas.objects import StateType

from core.storage import Storage
from gateway import db

TOKEN, OTHER_TOKEN = "awesome_token", "other_token"
MAX_ACTIVE_JOBS = 3
HELLO = b"from qiskit_serverless import save_result\nsave_result({'ok': True})\n"


@dataclass
class Gateway:
    """The app under test, the fake Prefect behind it and its stores."""

    http: TestClient
    prefect: FakeOrchestrator
    storage: Storage
    database: db.Database

    def call(self, method: str, path: str, token: str | None = TOKEN, **kwargs: Any) -> httpx.Response:
        headers = {**({"Authorization": f"Bearer {token}"} if token else {}), **kwargs.pop("headers", {})}
        return self.http.request(method, f"/api/v1{path}", headers=headers, **kwargs)

    def upload(
        self, title: str = "hello", token: str = TOKEN, files: dict[str, bytes] | None = None, **form: str
    ) -> httpx.Response:
        artifact = tar_of(files or {"main.py": HELLO})
        data = {"title": title, "entrypoint": "main.py", **form}
        return self.call("POST", "/programs/upload", token, data=data, files={"artifact": ("a.tar", artifact)})

    def run(self, title: str = "hello", token: str = TOKEN, arguments: str = "{}", **body: Any) -> httpx.Response:
        return self.call("POST", "/programs/run", token, json={"title": title, "arguments": arguments, **body})

    def job(self, job_id: str, token: str = TOKEN) -> dict[str, Any]:
        response = self.call("GET", f"/jobs/{job_id}", token)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def advance(self, job_id: str, *states: StateType) -> None:
        self.prefect.advance(job_id, *states)
