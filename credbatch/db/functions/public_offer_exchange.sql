-- The token endpoint: exchanges a pre-authorized code, once, for an access token good for
-- five minutes (the endpoint's expires_in says 300). The transaction code is checked here,
-- so its digest never leaves the database (a 6-digit code's SHA-256 is reversed by trying a
-- million codes), and five wrong codes end the offer whoever calls. The offer row is locked:
-- two exchanges of one code, or two wrong codes at once, are serialised. A revoked record's
-- code is spent: revocation may come after the invitation, and no access token may follow
-- it. The caller draws the access token and passes its SHA-256; it is stored only when
-- granted.
--
-- Outcomes: granted; unknown (no such code, used, expired, ended by wrong codes, or revoked);
-- tx_code_missing, tx_code_unexpected; tx_code_wrong (counted).
CREATE OR REPLACE FUNCTION public_offer_exchange(p_tenant uuid, p_code_hash bytea,
                                                 p_tx_code_hash bytea, p_token_hash bytea)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
  v_offer record;
BEGIN
  SELECT o.record_id, o.tx_code_hash,
         o.used_at IS NOT NULL OR o.expires_at <= now() OR o.failed_attempts >= 5
           OR r.state = 'REVOKED' AS spent
    INTO v_offer
  FROM public.oid4vci_offers o
  JOIN public.records r ON r.tenant_id = o.tenant_id AND r.id = o.record_id
  WHERE o.tenant_id = p_tenant AND o.code_hash = p_code_hash
  FOR UPDATE OF o;
  IF NOT FOUND OR v_offer.spent THEN
    RETURN 'unknown';
  END IF;
  IF v_offer.tx_code_hash IS NULL THEN
    IF p_tx_code_hash IS NOT NULL THEN
      RETURN 'tx_code_unexpected';
    END IF;
  ELSIF p_tx_code_hash IS NULL THEN
    RETURN 'tx_code_missing';
  ELSIF v_offer.tx_code_hash <> p_tx_code_hash THEN
    -- Digests compare in variable time; a guess costs one of five attempts all the same.
    UPDATE public.oid4vci_offers SET failed_attempts = failed_attempts + 1
    WHERE tenant_id = p_tenant AND code_hash = p_code_hash;
    RETURN 'tx_code_wrong';
  END IF;
  UPDATE public.oid4vci_offers SET used_at = now()
  WHERE tenant_id = p_tenant AND code_hash = p_code_hash;
  INSERT INTO public.oid4vci_access_tokens (tenant_id, token_hash, record_id, expires_at)
  VALUES (p_tenant, p_token_hash, v_offer.record_id, now() + interval '5 minutes');
  RETURN 'granted';
END
$$;
COMMENT ON FUNCTION public_offer_exchange(uuid, bytea, bytea, bytea) IS
  'Public endpoints: exchanges the offer whose code hashes to p_code_hash, checking the '
  'transaction code''s digest p_tx_code_hash (NULL: none given), for the access token whose '
  'SHA-256 is p_token_hash; returns granted, unknown, tx_code_missing, tx_code_unexpected or '
  'tx_code_wrong.';
REVOKE ALL ON FUNCTION public_offer_exchange(uuid, bytea, bytea, bytea) FROM PUBLIC;
SELECT grant_public('EXECUTE', 'FUNCTION public_offer_exchange(uuid, bytea, bytea, bytea)');
