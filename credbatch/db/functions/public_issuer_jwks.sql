-- The issuer metadata (/.well-known/jwt-vc-issuer/tenants/{tenant}): the public half of every
-- signing key of the tenant, active or retired, so older credentials still verify. Never the
-- wrapped private key.
CREATE OR REPLACE FUNCTION public_issuer_jwks(p_tenant uuid) RETURNS SETOF jsonb
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
  SELECT k.public_jwk FROM public.signing_keys k
  WHERE k.tenant_id = p_tenant
  ORDER BY k.created_at, k.kid
$$;
COMMENT ON FUNCTION public_issuer_jwks(uuid) IS
  'Public endpoints: the public JWKs of the tenant''s signing keys, oldest first.';
REVOKE ALL ON FUNCTION public_issuer_jwks(uuid) FROM PUBLIC;
SELECT grant_public('EXECUTE', 'FUNCTION public_issuer_jwks(uuid)');
