"""Tenants: the issuing organisation's profile and what is derived from it."""
