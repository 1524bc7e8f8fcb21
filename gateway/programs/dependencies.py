"""A program's `dependencies` at upload: allow-listed packages, at most one `==` pin each.

The stored form is JSON text of a list of `name==version` strings. A bare name takes the
allow-list's pin when the allow-list pins that package exactly; under an allow-listed range
it stays bare and the job installs the best match in the range (flows/dependencies.py).
"""

from __future__ import annotations

import json
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from core.allow_list import allowed_entry, version_allowed
from gateway.errors import bad_request
from gateway.programs.form_fields import json_field

FIXED_VERSION = "'dependencies' needs one fixed version using the '==' operator."
OPERATORS = "<>=!~"


def normalize_dependencies(text: str, allowed: list[str]) -> str:
    entries = json_field(text, "dependencies", list)
    normalized: dict[str, str] = {}
    for item in entries:
        requirement = _requirement(item)
        entry = allowed_entry(requirement, allowed)
        if entry is None or requirement.extras:  # extras mean nothing: packages install without dependencies
            named = requirement.name + (f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else "")
            raise bad_request(f"Dependency `{named}` is not allowed. Allowed dependencies: {', '.join(allowed)}")
        result = _resolve(requirement, entry)
        if normalized.setdefault(canonicalize_name(requirement.name), result) != result:
            raise bad_request(f"Dependency `{requirement.name}` is listed more than once with different versions.")
    return json.dumps(list(normalized.values()))


def _requirement(entry: Any) -> Requirement:
    """`"name==ver"`, `"name"` or `{"name": "ver"}` as a requirement with no or one `==` pin."""
    if isinstance(entry, dict) and len(entry) == 1:
        ((name, version),) = entry.items()
        if not isinstance(version, str):
            raise bad_request(FIXED_VERSION)
        version = version.strip()
        if version and version[0] not in OPERATORS:
            version = f"=={version}"
        entry = f"{name}{version}"
    if not isinstance(entry, str):
        raise bad_request(FIXED_VERSION)
    try:
        requirement = Requirement(entry)
    except InvalidRequirement:
        raise bad_request(FIXED_VERSION) from None
    pins = list(requirement.specifier)
    if requirement.url or requirement.marker or len(pins) > 1:
        raise bad_request(FIXED_VERSION)
    if pins and (pins[0].operator != "==" or pins[0].version.endswith("*")):
        raise bad_request(FIXED_VERSION)
    return requirement


def _resolve(requirement: Requirement, entry: str) -> str:
    allowed = Requirement(entry)
    name = allowed.name
    pins = list(requirement.specifier)
    if not pins:
        exact = [pin.version for pin in allowed.specifier if pin.operator in ("==", "===")]
        return f"{name}=={exact[0]}" if len(exact) == 1 and not exact[0].endswith("*") else name
    version = pins[0].version
    if not version_allowed(version, entry):
        raise bad_request(f"Dependency ({requirement.name}) version ({version}) is not allowed. Allowed: {entry}")
    return f"{name}=={version}"
