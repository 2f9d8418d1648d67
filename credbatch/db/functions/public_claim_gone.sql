-- Whether a claim link that names no credential is one UpdateRecordContact replaced: the
-- claim page and download then answer 410 Gone (the link worked once and never will again)
-- rather than 404. Only the token's digest is looked up; nothing of the record is returned.
CREATE OR REPLACE FUNCTION public_claim_gone(p_tenant uuid, p_token_hash bytea)
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
  SELECT EXISTS (SELECT 1 FROM public.superseded_claim_tokens s
                 WHERE s.tenant_id = p_tenant AND s.token_hash = p_token_hash)
$$;
COMMENT ON FUNCTION public_claim_gone(uuid, bytea) IS
  'Public endpoints: whether the tenant''s claim token with SHA-256 p_token_hash was replaced '
  '(the record''s contact changed).';
REVOKE ALL ON FUNCTION public_claim_gone(uuid, bytea) FROM PUBLIC;
SELECT grant_public('EXECUTE', 'FUNCTION public_claim_gone(uuid, bytea)');
