-- The credential offer a wallet fetches (/tenants/{tenant}/offers/{code}), found by the
-- SHA-256 of its pre-authorized code. Only an offer that can still be exchanged is shown:
-- unused, unexpired, fewer than five wrong transaction codes (public_offer_exchange counts
-- them). A revoked record's offer is found, so that the wallet learns it is gone rather than
-- unknown; so is an offer ResendInvitations replaced (oid4vci_superseded_offers), which is
-- gone too (revoked true: the endpoint answers 410) and can never be exchanged. Whether a
-- code is asked, never the code's digest.
CREATE OR REPLACE FUNCTION public_offer(p_tenant uuid, p_code_hash bytea)
RETURNS TABLE (schema_id uuid, schema_version integer, asks_tx_code boolean, revoked boolean)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
  SELECT b.schema_id, b.schema_version, o.tx_code_hash IS NOT NULL, r.state = 'REVOKED'
  FROM public.oid4vci_offers o
  JOIN public.records r ON r.tenant_id = o.tenant_id AND r.id = o.record_id
  JOIN public.batches b ON b.tenant_id = r.tenant_id AND b.id = r.batch_id
  WHERE o.tenant_id = p_tenant AND o.code_hash = p_code_hash AND o.used_at IS NULL
    AND o.expires_at > now() AND o.failed_attempts < 5
  UNION ALL
  SELECT b.schema_id, b.schema_version, false, true
  FROM public.oid4vci_superseded_offers s
  JOIN public.records r ON r.tenant_id = s.tenant_id AND r.id = s.record_id
  JOIN public.batches b ON b.tenant_id = r.tenant_id AND b.id = r.batch_id
  WHERE s.tenant_id = p_tenant AND s.code_hash = p_code_hash
$$;
COMMENT ON FUNCTION public_offer(uuid, bytea) IS
  'Public endpoints: the exchangeable offer whose code hashes to p_code_hash (its schema '
  'version, whether a transaction code is asked, whether the record was revoked), or the '
  'offer a resend replaced (revoked true).';
REVOKE ALL ON FUNCTION public_offer(uuid, bytea) FROM PUBLIC;
SELECT grant_public('EXECUTE', 'FUNCTION public_offer(uuid, bytea)');
