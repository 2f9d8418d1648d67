-- A key proof's c_nonce is spent in the statement that checks it: a nonce passes at most
-- once, before it expires.
CREATE OR REPLACE FUNCTION public_nonce_use(p_tenant uuid, p_nonce_hash bytea)
RETURNS boolean
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
  WITH used AS (
    UPDATE public.oid4vci_nonces n SET used_at = now()
    WHERE n.tenant_id = p_tenant AND n.nonce_hash = p_nonce_hash AND n.used_at IS NULL
      AND n.expires_at > now()
    RETURNING 1
  )
  SELECT EXISTS (SELECT 1 FROM used)
$$;
COMMENT ON FUNCTION public_nonce_use(uuid, bytea) IS
  'Public endpoints: spends the unused, unexpired c_nonce hashing to p_nonce_hash; whether '
  'there was one.';
REVOKE ALL ON FUNCTION public_nonce_use(uuid, bytea) FROM PUBLIC;
SELECT grant_public('EXECUTE', 'FUNCTION public_nonce_use(uuid, bytea)');
