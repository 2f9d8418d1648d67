"""Descriptions of the public contract derived from protos/ (the REST description)."""
