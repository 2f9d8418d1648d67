"""Credential schemas: the domain model, definition rules, CSV column rules and value rules.

Shared kernel: the TemplateService defines schemas with it, the upload validator checks files
with exactly the same column and value rules, and the workers read typed values from it.
"""
