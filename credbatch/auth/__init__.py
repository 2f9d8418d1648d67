"""Caller identity: bearer-token verification, per-RPC role rules, the current caller."""
