"""What each role may do. Routes name one permission; scope then narrows the rows (in SQL).

The README's permission table is this mapping; tests/test_authorization.py checks every
operation of the OpenAPI document against an independent table of expected answers.
"""

from __future__ import annotations

import enum
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from service.auth.principal import Principal, Role
from service.problems import Problem


class Permission(enum.StrEnum):
    GEOGRAPHY_READ = "geography:read"
    ORGANIZATIONS_READ = "organizations:read"
    ORGANIZATIONS_WRITE = "organizations:write"
    NETWORKS_READ = "networks:read"
    NETWORKS_WRITE = "networks:write"
    PARTICIPANTS_READ = "participants:read"
    PARTICIPANTS_WRITE = "participants:write"
    PARTICIPANTS_GDPR = "participants:gdpr"
    API_KEYS_MANAGE = "api_keys:manage"
    AUDIT_READ = "audit:read"
    OUTBOX_MANAGE = "outbox:manage"
    PLUGINS_READ = "plugins:read"
    WEBHOOKS_MANAGE = "webhooks:manage"
    DIRECTORY_READ = "directory:read"
    MEETINGS_READ = "meetings:read"
    MEETINGS_WRITE = "meetings:write"
    # Recording who came (check-in by QR code, attendance by hand): instructors may too.
    MEETINGS_ATTENDANCE = "meetings:attendance"
    CERTIFICATIONS_READ = "certifications:read"
    CERTIFICATIONS_WRITE = "certifications:write"
    # A carrier's integration sends its own list of pickup points (snapshot or deltas).
    REGISTRY_PUSH = "registry:push"
    # Progress, coverage and evaluation reports, and the dashboard that shows them.
    REPORTS_READ = "reports:read"
    # Recording a municipality's decision to use the method (step 1 of five).
    DECISIONS_WRITE = "decisions:write"


P = Permission
_COORDINATOR = frozenset(
    {
        P.GEOGRAPHY_READ,
        P.ORGANIZATIONS_READ,
        P.ORGANIZATIONS_WRITE,
        P.NETWORKS_READ,
        P.NETWORKS_WRITE,
        P.PARTICIPANTS_READ,
        P.PARTICIPANTS_WRITE,
        P.PARTICIPANTS_GDPR,
        P.WEBHOOKS_MANAGE,
        P.DIRECTORY_READ,
        P.MEETINGS_READ,
        P.MEETINGS_WRITE,
        P.MEETINGS_ATTENDANCE,
        P.CERTIFICATIONS_READ,
        P.CERTIFICATIONS_WRITE,
        P.REPORTS_READ,
        P.DECISIONS_WRITE,
    }
)

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.NATIONAL_ADMIN: frozenset(Permission),
    Role.SYSTEM: frozenset(Permission),
    Role.COUNTY_COORDINATOR: _COORDINATOR,
    Role.MUNICIPAL_COORDINATOR: _COORDINATOR,
    # Instructors read the places, networks and meetings they work in, and check people in.
    Role.INSTRUCTOR: frozenset(
        {
            P.GEOGRAPHY_READ,
            P.ORGANIZATIONS_READ,
            P.NETWORKS_READ,
            P.DIRECTORY_READ,
            P.MEETINGS_READ,
            P.MEETINGS_ATTENDANCE,
            P.CERTIFICATIONS_READ,
            P.REPORTS_READ,
        }
    ),
    # A carrier's integration sees its own pickup points only (rows narrowed by carrier).
    Role.CARRIER_INTEGRATION: frozenset(
        {P.GEOGRAPHY_READ, P.ORGANIZATIONS_READ, P.DIRECTORY_READ, P.REGISTRY_PUSH}
    ),
    Role.VIEWER: frozenset(
        {
            P.GEOGRAPHY_READ,
            P.ORGANIZATIONS_READ,
            P.NETWORKS_READ,
            P.PARTICIPANTS_READ,
            P.DIRECTORY_READ,
            P.MEETINGS_READ,
            P.CERTIFICATIONS_READ,
            P.REPORTS_READ,
        }
    ),
    Role.AUDITOR: frozenset({P.AUDIT_READ}),
}


def allowed(principal: Principal, permission: Permission) -> bool:
    return any(permission in ROLE_PERMISSIONS.get(role, frozenset()) for role in principal.roles)


def _guard_for(permission: Permission) -> Any:
    # Async although it awaits nothing: Litestar runs a sync guard in a worker thread.
    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        principal = connection.scope.get("user")
        if not isinstance(principal, Principal) or not allowed(principal, permission):
            raise Problem("forbidden", f"your role may not do this (needs {permission.value})")

    return guard


def requires(permission: Permission) -> dict[str, Any]:
    """Handler keyword arguments: the guard, and the permission recorded in `opt` for audits."""
    return {"guards": [_guard_for(permission)], "opt": {"permission": permission.value}}


PUBLIC: dict[str, Any] = {"opt": {"public": True, "exclude_from_auth": True}}
