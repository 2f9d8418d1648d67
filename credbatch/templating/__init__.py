"""Template rendering for invitations and certificates: sandbox, placeholders, SMS, PDF.

Shared kernel: the TemplateService checks and previews templates with it, the issuance
workers render with exactly the same code (compiled once per batch).
"""
