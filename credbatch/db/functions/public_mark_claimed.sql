-- After the signer handed the wallet its credential: the record the access token (by its
-- SHA-256) was granted for becomes CLAIMED. The token names the record, so the public role
-- can mark no record it was not given a token for; the token's expiry is not checked again,
-- as the request it authorised may outlast it. From ISSUED too: the worker stores the offer
-- before it writes the record's outcome, so a fast wallet can claim in between, and the
-- worker's later outcome write leaves a CLAIMED record's state alone. Counts and the
-- record.claimed event follow from the triggers on records.
CREATE OR REPLACE FUNCTION public_mark_claimed(p_tenant uuid, p_token_hash bytea)
RETURNS boolean
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
  WITH claimed AS (
    UPDATE public.records r SET state = 'CLAIMED', claimed_at = now(), updated_at = now()
    FROM public.oid4vci_access_tokens t
    WHERE t.tenant_id = p_tenant AND t.token_hash = p_token_hash
      AND r.tenant_id = t.tenant_id AND r.id = t.record_id
      AND r.state IN ('ISSUED', 'INVITED')
    RETURNING 1
  )
  SELECT EXISTS (SELECT 1 FROM claimed)
$$;
COMMENT ON FUNCTION public_mark_claimed(uuid, bytea) IS
  'Public endpoints: marks CLAIMED the ISSUED or INVITED record the access token hashing to '
  'p_token_hash was granted for; whether it changed.';
REVOKE ALL ON FUNCTION public_mark_claimed(uuid, bytea) FROM PUBLIC;
SELECT grant_public('EXECUTE', 'FUNCTION public_mark_claimed(uuid, bytea)');
