"""The internal signer: holder-bound credentials for the public OID4VCI endpoints."""
