"""Upload form fields that carry JSON text (`dependencies`, `env_vars`, `sizes`)."""

from __future__ import annotations

import json
from typing import Any

from gateway.errors import bad_request


def json_field(text: str, field: str, kind: type) -> Any:
    """The field's JSON value, which must be of `kind`; a clear 400 otherwise."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise bad_request(f"'{field}' must be JSON text.") from None
    if not isinstance(value, kind):
        raise bad_request(f"'{field}' must be a JSON {kind.__name__ if kind is not dict else 'object'}.")
    return value
