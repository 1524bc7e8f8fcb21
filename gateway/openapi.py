"""The OpenAPI document at /openapi.json and /docs: FastAPI's, made to state what the gateway really accepts.

Several inputs are checked by the services themselves, with the reference gateway's own 400 messages
(`'function' not provided or is not valid`, `Type is not valid...`). Declaring those rules to FastAPI would
replace the messages with pydantic's, so the routes only *document* them (`json_schema_extra`), and this
module finishes the document:

- no 422 anywhere (the gateway answers 400 with a message);
- a query, header or form value is text or absent, never JSON null: `anyOf [X, null]` becomes X;
- a parameter or form field marked `REQUIRED` is documented as required (the service refuses its absence);
- a required form field needs at least one character: FastAPI reads an empty form field as a missing one.

Patterns here are ECMA-262 (what JSON Schema validators and fuzzers read): no inline flags, so a
case-insensitive word is spelled with classes (`[Ee][Rr]...`).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

REQUIRED = "x-qs-required"
NULL = {"type": "null"}
FORM_MEDIA_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")

# JSON text as `json.loads` reads it (only these four characters are JSON whitespace).
_WS = "[ \\t\\n\\r]*"
_STRING = '"(?:[^"\\\\]|\\\\.)*"'
JSON_OBJECT = f"^{_WS}\\{{"
JSON_ARRAY = f"^{_WS}\\["
# An object whose every value is a string (env_vars): a regular language, so a pattern says it exactly.
JSON_STRING_MAP = (
    f"^{_WS}\\{{{_WS}(?:{_STRING}{_WS}:{_WS}{_STRING}{_WS}(?:,{_WS}{_STRING}{_WS}:{_WS}{_STRING}{_WS})*)?\\}}{_WS}$"
)
# arguments_schema: an object or a boolean schema, or "{}" / '""' (both remove the schema).
JSON_SCHEMA_TEXT = f'^{_WS}(?:\\{{|true{_WS}$|false{_WS}$|""{_WS}$)'


def json_text(pattern: str, description: str, content_schema: dict[str, Any]) -> dict[str, Any]:
    """A string field that carries JSON text (OpenAPI 3.1 `contentMediaType`/`contentSchema`)."""
    return {
        "contentMediaType": "application/json",
        "contentSchema": content_schema,
        "pattern": pattern,
        "description": description,
    }


def case_insensitive(word: str) -> str:
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in word)


def build(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schemas = document.get("components", {}).get("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        for methods in document.get("paths", {}).values():
            for operation in methods.values():
                operation.get("responses", {}).pop("422", None)
                for parameter in operation.get("parameters", []):
                    parameter["schema"] = _not_null(parameter["schema"])
                    if parameter["schema"].pop(REQUIRED, False):
                        parameter["required"] = True
                body = operation.get("requestBody", {})
                for media_type in FORM_MEDIA_TYPES:
                    reference = body.get("content", {}).get(media_type, {}).get("schema", {}).get("$ref", "")
                    if reference:
                        name = reference.rsplit("/", 1)[-1]
                        _finish_form(schemas[name])
                        if schemas[name].get("required"):
                            body["required"] = True  # FastAPI leaves it optional when no field is typed required
        app.openapi_schema = document
    return app.openapi_schema


def _finish_form(schema: dict[str, Any]) -> None:
    """Idempotent: a form schema may be shared by several operations."""
    required: list[str] = schema.setdefault("required", [])
    for name, field in list(schema.get("properties", {}).items()):
        field = schema["properties"][name] = _not_null(field)
        if field.pop(REQUIRED, False) and name not in required:
            required.append(name)
        if name in required and field.get("type") == "string" and "format" not in field:
            field["minLength"] = max(1, field.get("minLength", 0))
    if not required:
        schema.pop("required")


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """`anyOf [X, null]` (FastAPI's `T | None`) as X, keeping the outer title, description and extras."""
    branches = schema.get("anyOf")
    if not isinstance(branches, list) or NULL not in branches:
        return schema
    rest = [branch for branch in branches if branch != NULL]
    outer = {key: value for key, value in schema.items() if key != "anyOf" and not (key == "default" and value is None)}
    if len(rest) == 1:
        return {**rest[0], **outer}
    return {"anyOf": rest, **outer}
