-- A key proof's c_nonce is spent in the statement that checks it. Nonces are stateless (the
-- public process checks their MAC and age before calling), so spending one is recording its
-- SHA-256 until p_expires_at, when it would be refused as stale anyway: a second proof with it
-- conflicts and passes no more. Spent nonces of every tenant that have expired go as new ones
-- come (a few at a time, so one call never pays for a backlog), five minutes after expiry so a
-- public process whose clock lags the database's still finds them; the table holds about two
-- nonce lifetimes of credential requests.
DROP FUNCTION IF EXISTS public_nonce_use(uuid, bytea);
CREATE OR REPLACE FUNCTION public_nonce_use(p_tenant uuid, p_nonce_hash bytea,
                                            p_expires_at timestamptz)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
  v_spent integer;
BEGIN
  DELETE FROM public.oid4vci_spent_nonces n
  WHERE n.ctid = ANY (ARRAY(SELECT s.ctid FROM public.oid4vci_spent_nonces s
                            WHERE s.expires_at < now() - interval '5 minutes'
                            LIMIT 16));
  INSERT INTO public.oid4vci_spent_nonces (tenant_id, nonce_hash, expires_at)
  VALUES (p_tenant, p_nonce_hash, p_expires_at)
  ON CONFLICT (tenant_id, nonce_hash) DO NOTHING;
  GET DIAGNOSTICS v_spent = ROW_COUNT;
  RETURN v_spent = 1;
END
$$;
COMMENT ON FUNCTION public_nonce_use(uuid, bytea, timestamptz) IS
  'Public endpoints: spends the c_nonce hashing to p_nonce_hash (kept until p_expires_at); '
  'whether it was not spent before.';
REVOKE ALL ON FUNCTION public_nonce_use(uuid, bytea, timestamptz) FROM PUBLIC;
SELECT grant_public('EXECUTE', 'FUNCTION public_nonce_use(uuid, bytea, timestamptz)');
