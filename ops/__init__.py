"""Operators' procedures that the runbook (docs/operations.md) names, each tried by tests/ops."""
