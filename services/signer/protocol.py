"""The signer's HTTP contract, shared with its client (which must not import key handling)."""

# POST {"tenant_id", "record_id", "access_token", "holder_jwk"} -> 200 {"credential": "<sd-jwt>"};
# 403 {"error": "no_grant"} when the access token is not a live, unused grant for the record.
BOUND_CREDENTIALS_PATH = "/v1/bound-credentials"
NO_GRANT = "no_grant"
