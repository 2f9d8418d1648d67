"""TenantService: the caller's tenant (its profile)."""
