"""Incremental CSV reading from byte chunks (UTF-8, RFC 4180), bounded by the chunk size."""

from credbatch.csvstream.reader import (
    DEFAULT_MAX_RECORD_CHARS,
    CsvFormatError,
    CsvStreamReader,
    Row,
    iter_rows,
)

__all__ = ["DEFAULT_MAX_RECORD_CHARS", "CsvFormatError", "CsvStreamReader", "Row", "iter_rows"]
