"""The signer's HTTP contract, shared with its client (which must not import key handling)."""

# POST {"tenant_id", "record_id", "holder_jwk"} -> 200 {"credential": "<sd-jwt>"}.
BOUND_CREDENTIALS_PATH = "/v1/bound-credentials"
