-- The credential endpoint's check of an access token (by its SHA-256): the record it is good
-- for and that record's schema version, while it has not expired.
CREATE OR REPLACE FUNCTION public_access_grant(p_tenant uuid, p_token_hash bytea)
RETURNS TABLE (record_id uuid, schema_id uuid, schema_version integer)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
  SELECT t.record_id, b.schema_id, b.schema_version
  FROM public.oid4vci_access_tokens t
  JOIN public.records r ON r.tenant_id = t.tenant_id AND r.id = t.record_id
  JOIN public.batches b ON b.tenant_id = r.tenant_id AND b.id = r.batch_id
  WHERE t.tenant_id = p_tenant AND t.token_hash = p_token_hash AND t.expires_at > now()
$$;
COMMENT ON FUNCTION public_access_grant(uuid, bytea) IS
  'Public endpoints: the record and schema version the unexpired access token hashing to '
  'p_token_hash is good for; no row when none.';
REVOKE ALL ON FUNCTION public_access_grant(uuid, bytea) FROM PUBLIC;
SELECT grant_public('EXECUTE', 'FUNCTION public_access_grant(uuid, bytea)');
