-- The credential endpoint's check of an access token (by its SHA-256): the record it is good
-- for and that record's schema version, while it has not expired, has not obtained its
-- credential yet (one grant, one credential) and its record has not been CLAIMED (through
-- another token of an earlier offer). A revoked record is returned, flagged, so the endpoint
-- can say credential_request_denied rather than invalid_token. The signer checks all of this
-- again when it spends the token (signer_grant_spend); this answer is only the early one.
DROP FUNCTION IF EXISTS public_access_grant(uuid, bytea);
CREATE OR REPLACE FUNCTION public_access_grant(p_tenant uuid, p_token_hash bytea)
RETURNS TABLE (record_id uuid, schema_id uuid, schema_version integer, revoked boolean)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
  SELECT t.record_id, b.schema_id, b.schema_version, r.state = 'REVOKED'
  FROM public.oid4vci_access_tokens t
  JOIN public.records r ON r.tenant_id = t.tenant_id AND r.id = t.record_id
  JOIN public.batches b ON b.tenant_id = r.tenant_id AND b.id = r.batch_id
  WHERE t.tenant_id = p_tenant AND t.token_hash = p_token_hash AND t.expires_at > now()
    AND t.used_at IS NULL AND r.state <> 'CLAIMED'
$$;
COMMENT ON FUNCTION public_access_grant(uuid, bytea) IS
  'Public endpoints: the record and schema version the unexpired, unused access token hashing '
  'to p_token_hash is good for, and whether the record is revoked; no row when none or when '
  'the record is already CLAIMED.';
REVOKE ALL ON FUNCTION public_access_grant(uuid, bytea) FROM PUBLIC;
SELECT grant_public('EXECUTE', 'FUNCTION public_access_grant(uuid, bytea)');
