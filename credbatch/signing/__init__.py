"""Credential signing: tenant keys, SD-JWT VC issuance and verification, token status lists."""
