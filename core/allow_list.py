"""The allow-list of extra packages programs may depend on: one requirement per line.

The gateway checks uploads against it, the executor checks again before installing
(the list may have changed in between), and `GET /dependencies-versions/` serves it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name


def read_allow_list(path: Path) -> list[str]:
    """The requirement lines of an allow-list file; `#` comments and blank lines are skipped."""
    entries: list[str] = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            Requirement(text)
        except InvalidRequirement as error:
            raise ValueError(f"{path}:{number}: not a requirement: {text} ({error})") from None
        entries.append(text)
    return entries


def allowed_entry(requirement: Requirement, allowed: Iterable[str]) -> str | None:
    """The allow-list line for this package (names compared PEP 503-normalised), if any."""
    name = canonicalize_name(requirement.name)
    return next((entry for entry in allowed if canonicalize_name(Requirement(entry).name) == name), None)


def version_allowed(version: str, entry: str) -> bool:
    return Requirement(entry).specifier.contains(version, prereleases=True)
