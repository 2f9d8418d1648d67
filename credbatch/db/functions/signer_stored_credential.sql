-- What the signer binds to a wallet's key: the record's stored credential, only for a batch
-- whose holders claim with a wallet (OID4VCI), and never for a revoked record, whatever
-- access token the public endpoints were shown.
CREATE OR REPLACE FUNCTION signer_stored_credential(p_tenant uuid, p_record uuid) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
  SELECT c.sd_jwt FROM public.credentials c
  JOIN public.batches b ON b.tenant_id = c.tenant_id AND b.id = c.batch_id
  JOIN public.records r ON r.tenant_id = c.tenant_id AND r.id = c.record_id
  WHERE c.tenant_id = p_tenant AND c.record_id = p_record AND b.claim_mode = 'OID4VCI'
    AND r.state <> 'REVOKED'
$$;
COMMENT ON FUNCTION signer_stored_credential(uuid, uuid) IS
  'Signer: the stored SD-JWT VC of the tenant''s record p_record when its batch claims by '
  'OID4VCI and it is not revoked; NULL otherwise.';
REVOKE ALL ON FUNCTION signer_stored_credential(uuid, uuid) FROM PUBLIC;
SELECT grant_signer('EXECUTE', 'FUNCTION signer_stored_credential(uuid, uuid)');
