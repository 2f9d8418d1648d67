"""Roles a caller may hold; a caller holding several sees the union of what each allows.

* org_admin: everything in the tenant (schemas, templates, every batch of every department);
* issuer: reads schemas and templates, uploads batches in its departments, sees, retries and
  cancels the batches it created;
* observer: read-only, every batch of its departments;
* service: an internal platform service acting for the tenant in its token, with org_admin
  rights.

What each RPC allows is in ``credbatch.auth.rules``; batch visibility is enforced by row-level
security as well.
"""

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
