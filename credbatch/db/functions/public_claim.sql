-- What a claim link (/claim/{token}, and its bearer download) shows: the stored credential,
-- until when the link works, how the batch's holders claim, whether the record was revoked,
-- the schema's name, and whether the wallet will ask for a code sent by SMS (the batch
-- invites by email and SMS). The record's state is read; its email, phone and attributes are
-- not (the credential carries the attributes the holder may disclose). With them, the
-- generation of the record's current offer (one more than its last offer replaced by
-- ResendInvitations, 0 when none was), which the page's offer is derived for.
DROP FUNCTION IF EXISTS public_claim(uuid, text);
CREATE OR REPLACE FUNCTION public_claim(p_tenant uuid, p_claim_token text)
RETURNS TABLE (sd_jwt text, claim_expires_at timestamptz, claim_mode text, revoked boolean,
               schema_name text, asks_tx_code boolean, offer_generation integer)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
  SELECT c.sd_jwt, c.claim_expires_at, b.claim_mode, r.state = 'REVOKED', s.display_name,
         b.mediums @> ARRAY['EMAIL', 'SMS'],
         coalesce((SELECT max(o.generation) + 1 FROM public.oid4vci_superseded_offers o
                   WHERE o.tenant_id = c.tenant_id AND o.record_id = c.record_id), 0)
  FROM public.credentials c
  JOIN public.records r ON r.tenant_id = c.tenant_id AND r.id = c.record_id
  JOIN public.batches b ON b.tenant_id = c.tenant_id AND b.id = c.batch_id
  JOIN public.credential_schemas s ON s.tenant_id = b.tenant_id AND s.id = b.schema_id
  WHERE c.tenant_id = p_tenant AND c.claim_token = p_claim_token
$$;
COMMENT ON FUNCTION public_claim(uuid, text) IS
  'Public endpoints: the claim of the tenant''s claim token p_claim_token (credential, link '
  'expiry, claim mode, revoked, schema name, whether an SMS code is asked, the generation of '
  'the record''s current offer); no row when none.';
REVOKE ALL ON FUNCTION public_claim(uuid, text) FROM PUBLIC;
SELECT grant_public('EXECUTE', 'FUNCTION public_claim(uuid, text)');
