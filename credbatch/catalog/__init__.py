"""The catalog of credential schemas and templates: domain records and their repository.

Shared by the TemplateService (writes), the upload service and the workers (reads).
"""
