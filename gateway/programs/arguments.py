"""A job's arguments: a JSON object within the size limit, valid against the program's schema."""

from __future__ import annotations

import json
from typing import Any

import jsonschema

from gateway import db
from gateway.errors import ApiError, bad_request
from gateway.openapi import JSON_OBJECT, json_text

# `arguments` of run and validate_arguments: parsed by the service (its own 400 messages), so only documented.
ARGUMENTS = json_text(
    JSON_OBJECT,
    "JSON text of an object (the function's keyword arguments); it must also satisfy the function's "
    "`arguments_schema`, if it has one (400 otherwise). Larger than the gateway's limit: 413.",
    {"type": "object"},
)


def parse_arguments(text: str, limit: int) -> Any:
    if len(text.encode()) > limit:
        raise ApiError(413, f"Arguments are larger than {limit} bytes.")
    try:
        arguments = json.loads(text)
    except (ValueError, RecursionError):
        raise bad_request("'arguments' must be JSON text.") from None
    if not isinstance(arguments, dict):
        raise bad_request("'arguments' must be a JSON object.")
    return arguments


def validate_against_schema(program: db.Program, arguments: Any) -> None:
    if not program.arguments_schema:
        return
    validator = jsonschema.Draft202012Validator(
        json.loads(program.arguments_schema), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    try:
        error = jsonschema.exceptions.best_match(validator.iter_errors(arguments))
    except RecursionError:
        raise bad_request("Arguments are too deeply nested to validate.") from None
    if error is not None:
        raise bad_request(error.message, path=[str(part) for part in error.absolute_path])
