-- Erases the personal data of records of one tenant: contact data, attribute values, the error
-- message (it may quote a value), the revocation's reason (free text about the holder), the signed credential's body (its disclosures carry the
-- attributes; id, key, status list entry and expiry stay, so it can still be revoked), the
-- rendered certificate, the offer and access tokens that would hand the credential out (its
-- claim link answers 410 from now on), and its reminder schedule. Records still open
-- (PENDING, QUEUED, ISSUED) are left alone: a worker may be issuing them; the caller closes
-- them first or comes back.
-- Already purged records are skipped, so running it again changes nothing.
-- Called by janitor_purge and holder_records_erase (as the owner) only.
CREATE OR REPLACE FUNCTION records_erase(p_tenant uuid, p_records uuid[], p_reason text)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
  v_ids uuid[];
BEGIN
  SELECT coalesce(array_agg(r.id), '{}') INTO v_ids
  FROM public.records r
  WHERE r.tenant_id = p_tenant AND r.id = ANY (p_records) AND r.purged_at IS NULL
    AND r.state NOT IN ('PENDING', 'QUEUED', 'ISSUED');
  IF cardinality(v_ids) = 0 THEN
    RETURN 0;
  END IF;
  DELETE FROM public.certificates c WHERE c.tenant_id = p_tenant AND c.record_id = ANY (v_ids);
  DELETE FROM public.oid4vci_access_tokens t
  WHERE t.tenant_id = p_tenant AND t.record_id = ANY (v_ids);
  DELETE FROM public.oid4vci_offers o WHERE o.tenant_id = p_tenant AND o.record_id = ANY (v_ids);
  -- No reminder goes to an erased holder.
  DELETE FROM public.record_reminders m WHERE m.tenant_id = p_tenant AND m.record_id = ANY (v_ids);
  UPDATE public.credentials c
  SET sd_jwt = '', claim_expires_at = least(c.claim_expires_at, now())
  WHERE c.tenant_id = p_tenant AND c.record_id = ANY (v_ids);
  UPDATE public.records r
  SET email = NULL, phone = NULL, attributes = '{}', error_message = NULL, revoke_reason = NULL,
      purged_at = now(), purge_reason = p_reason
  WHERE r.tenant_id = p_tenant AND r.id = ANY (v_ids);
  RETURN cardinality(v_ids);
END
$$;
COMMENT ON FUNCTION records_erase(uuid, uuid[], text) IS
  'Erases the personal data of the closed, unpurged records p_records of tenant p_tenant '
  '(p_reason RETENTION or ERASURE) and returns how many it erased.';
REVOKE ALL ON FUNCTION records_erase(uuid, uuid[], text) FROM PUBLIC;
