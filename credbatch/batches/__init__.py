"""Batches kernel: the batch view, its state derivation, its repository and its proto mapping.

Shared by the BatchStatusService, the UploadService (which returns the created Batch) and the
workers (which derive the stored batch state from the record counts).
"""
