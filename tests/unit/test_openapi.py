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
