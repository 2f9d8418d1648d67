"""Roles a caller may hold (design.md, "Identity, tenancy, roles, departments")."""

from __future__ import annotations

ORG_ADMIN = "org_admin"
ISSUER = "issuer"
OBSERVER = "observer"
SERVICE = "service"

ALL_ROLES: frozenset[str] = frozenset({ORG_ADMIN, ISSUER, OBSERVER, SERVICE})
ADMINS: frozenset[str] = frozenset({ORG_ADMIN, SERVICE})
UPLOADERS: frozenset[str] = frozenset({ORG_ADMIN, SERVICE, ISSUER})
READERS: frozenset[str] = ALL_ROLES
DEFAULT_DEPARTMENT = "default"
