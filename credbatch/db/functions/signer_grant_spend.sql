-- The signer's own check that a wallet was granted what it asks to have signed, and the
-- spending of that grant. The public process passes the wallet's access token; the signer
-- digests it, and this returns the stored credential of p_record only when that token (of
-- p_tenant) is unexpired, unused and names p_record, the record is ISSUED or INVITED (not yet
-- CLAIMED, not REVOKED) and its batch claims by OID4VCI. In the same statement's transaction
-- the token is marked used and the record CLAIMED; the signer signs before it commits and
-- rolls back on a signing error, so a grant is spent exactly when a credential leaves.
--
-- The token and record rows are locked (records are the only lock-ordered rows taken, and
-- alone): of two requests with one token, or with two tokens of one record, the second waits,
-- then finds the token used or the record CLAIMED and gets nothing. From ISSUED too: the
-- worker stores the offer before it writes the record's outcome, so a fast wallet can claim
-- in between, and the worker's later outcome write leaves a CLAIMED record's state alone.
-- Counts and the record.claimed event follow from the triggers on records.
CREATE OR REPLACE FUNCTION signer_grant_spend(p_tenant uuid, p_token_hash bytea,
                                              p_record uuid)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
  v_credential text;
BEGIN
  SELECT c.sd_jwt INTO v_credential
  FROM public.oid4vci_access_tokens t
  JOIN public.records r ON r.tenant_id = t.tenant_id AND r.id = t.record_id
  JOIN public.batches b ON b.tenant_id = r.tenant_id AND b.id = r.batch_id
  JOIN public.credentials c ON c.tenant_id = r.tenant_id AND c.record_id = r.id
  WHERE t.tenant_id = p_tenant AND t.token_hash = p_token_hash AND t.record_id = p_record
    AND t.used_at IS NULL AND t.expires_at > now()
    AND r.state IN ('ISSUED', 'INVITED') AND b.claim_mode = 'OID4VCI'
  FOR UPDATE OF t, r;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  UPDATE public.oid4vci_access_tokens SET used_at = now()
  WHERE tenant_id = p_tenant AND token_hash = p_token_hash;
  UPDATE public.records SET state = 'CLAIMED', claimed_at = now(), updated_at = now()
  WHERE tenant_id = p_tenant AND id = p_record;
  RETURN v_credential;
END
$$;
COMMENT ON FUNCTION signer_grant_spend(uuid, bytea, uuid) IS
  'Signer: spends the unexpired, unused access token hashing to p_token_hash when it names '
  'p_record, an ISSUED or INVITED record of an OID4VCI batch: marks it used and the record '
  'CLAIMED and returns the record''s stored SD-JWT VC; NULL (nothing changed) otherwise.';
REVOKE ALL ON FUNCTION signer_grant_spend(uuid, bytea, uuid) FROM PUBLIC;
SELECT grant_signer('EXECUTE', 'FUNCTION signer_grant_spend(uuid, bytea, uuid)');
