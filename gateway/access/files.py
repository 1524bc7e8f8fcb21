"""File-area policy (docs/architecture.md, Access): a user area follows the program's visibility; a
provider area (shared by every user of a provider program) is for the provider's admins."""

from __future__ import annotations

from gateway.access.programs import ProgramFacts, can_view, is_provider_admin
from gateway.access.subject import Principal


def can_use_user_area(subject: Principal | None, program: ProgramFacts) -> bool:
    return can_view(subject, program)


def can_use_provider_area(subject: Principal | None, admin_groups: frozenset[str]) -> bool:
    return is_provider_admin(subject, admin_groups)
