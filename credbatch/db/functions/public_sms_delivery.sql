-- Records what an SMS provider's status callback says about the invitation it names by its
-- own message id (MessageSid), which the worker stored with the send's stamp (record_sends)
-- when the provider accepted it.
-- The public endpoint calls it only for a callback whose signature, under the account's
-- token, it checked. The same ranks as public_email_deliveries decide between reports; the
-- record's state is never touched. A purged record takes no report, as there. Returns
-- 'recorded', 'unchanged', 'gone' (the record was purged) or 'unknown' (no record holds that
-- message id: not ours, or a message replaced by a resend).
CREATE OR REPLACE FUNCTION public_sms_delivery(p_sid text, p_state text, p_code text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
  v_tenant uuid;
  v_record uuid;
  v_current text;
  v_purged timestamptz;
BEGIN
  IF p_state NOT IN ('DELIVERED', 'DEFERRED', 'BOUNCED', 'FAILED') THEN
    RAISE EXCEPTION 'delivery state % is not a report', p_state
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  SELECT r.tenant_id, r.id, r.sms_delivery, r.purged_at
  INTO v_tenant, v_record, v_current, v_purged
  FROM public.record_sends s
  JOIN public.records r ON r.tenant_id = s.tenant_id AND r.id = s.record_id
  WHERE s.message_id = p_sid AND s.medium = 'SMS'
  FOR NO KEY UPDATE OF r;
  IF v_record IS NULL THEN
    RETURN 'unknown';
  END IF;
  IF v_purged IS NOT NULL THEN
    RETURN 'gone';
  END IF;
  IF public.delivery_rank(p_state) < public.delivery_rank(v_current) THEN
    RETURN 'unchanged';
  END IF;
  UPDATE public.records
  SET sms_delivery = p_state, sms_delivery_code = left(p_code, 32), sms_delivery_at = now()
  WHERE tenant_id = v_tenant AND id = v_record;
  RETURN 'recorded';
END
$$;
COMMENT ON FUNCTION public_sms_delivery(text, text, text) IS
  'SMS status callback: records DELIVERED, BOUNCED (undelivered) or FAILED with the '
  'provider''s error code on the SMS channel of the record whose message id is p_sid; '
  'recorded, unchanged, gone (purged: nothing recorded) or unknown.';
REVOKE ALL ON FUNCTION public_sms_delivery(text, text, text) FROM PUBLIC;
SELECT grant_public('EXECUTE', 'FUNCTION public_sms_delivery(text, text, text)');
