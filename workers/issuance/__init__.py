"""The issuance worker: one credential, certificate and invitation per record job."""
