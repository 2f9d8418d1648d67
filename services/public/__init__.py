"""The public HTTP endpoints for holders and verifiers."""
