"""The OpenAPI document the gateway serves at /docs and /openapi.json (no services needed to build it)."""

from __future__ import annotations

from gateway.app import create_app


def test_every_api_operation_documents_its_error_shape() -> None:
    document = create_app().openapi()
    operations = [
        (path, method, operation)
        for path, methods in document["paths"].items()
        if path.startswith("/api/v1/")
        for method, operation in methods.items()
    ]
    assert len(operations) >= 30
    for path, method, operation in operations:
        for status in ("400", "401", "404"):
            schema = operation["responses"][status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorOut"}, (path, method, status)
    assert document["components"]["schemas"]["ErrorOut"]["required"] == ["message"]
    assert not [path for path, _, operation in operations if "422" in operation["responses"]]  # 400, never 422
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_file_routes_take_their_area_from_the_query() -> None:
    paths = create_app().openapi()["paths"]
    names = {parameter["name"] for parameter in paths["/api/v1/files/provider/download"]["get"]["parameters"]}
    assert {"file", "function", "provider"} <= names
    upload = paths["/api/v1/files/upload"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert upload["schema"]["required"] == ["file"]


def test_the_document_states_what_the_services_check() -> None:
    document = create_app().openapi()
    paths, schemas = document["paths"], document["components"]["schemas"]
    for methods in paths.values():
        for operation in methods.values():
            for parameter in operation.get("parameters", []):  # a query or header value is never JSON null
                assert {"type": "null"} not in parameter["schema"].get("anyOf", []), parameter
    provider_jobs = {p["name"]: p for p in paths["/api/v1/jobs/provider"]["get"]["parameters"]}
    assert provider_jobs["provider"]["required"] is True
    assert {"400", "409"} <= set(paths["/api/v1/programs/run"]["post"]["responses"])
    assert "503" in paths["/readiness"]["get"]["responses"]
    download = paths["/api/v1/files/download"]["get"]["responses"]["200"]["content"]
    assert list(download) == ["application/octet-stream"]
    sub_status = schemas["Body_patch_sub_status_api_v1_jobs__job_id__sub_status_patch"]
    assert sub_status["required"] == ["sub_status"] and "MAPPING" in sub_status["properties"]["sub_status"]["enum"]
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "`Authorization: Bearer <token>`: a user's token or a job's.",
    }


def test_a_405_allows_every_method_of_the_path() -> None:
    from fastapi.testclient import TestClient

    answer = TestClient(create_app()).request("OPTIONS", "/api/v1/jobs/x/runtime_jobs/")
    assert answer.status_code == 405 and answer.headers["allow"] == "GET, POST"
