"""PostgreSQL access: the application pool (``pool``) and schema migrations (``migrate``)."""

from credbatch.db.pool import create_pool, register_codecs

__all__ = ["create_pool", "register_codecs"]
