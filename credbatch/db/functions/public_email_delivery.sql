-- Records what a bounce or delivery report says about one record's email invitation. The
-- bounce receiver (services.bounces, as the public endpoints' role) calls it only after
-- checking the VERP token's MAC over p_record, so a forged report names no record it could
-- not name before; the unique index records_id_idx makes the id one record of one tenant.
-- The record's state is never touched (a REVOKED or CLAIMED record keeps it). A report
-- replaces a state of no higher rank: ACCEPTED and DEFERRED yield to anything, DELIVERED to
-- a later hard bounce (a relay that said "relayed" and whose next hop bounced), BOUNCED and
-- FAILED only to each other; so reports arriving out of order end on the strongest news.
-- Returns 'recorded', 'unchanged' (a weaker report than what is recorded) or 'unknown'.
CREATE OR REPLACE FUNCTION public_email_delivery(
  p_record uuid, p_state text, p_code text, p_diagnostic text
) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
  v_current text;
  v_found boolean;
BEGIN
  IF p_state NOT IN ('DELIVERED', 'DEFERRED', 'BOUNCED', 'FAILED') THEN
    RAISE EXCEPTION 'delivery state % is not a report', p_state
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  SELECT true, r.email_delivery INTO v_found, v_current
  FROM public.records r WHERE r.id = p_record FOR NO KEY UPDATE;
  IF v_found IS NULL THEN
    RETURN 'unknown';
  END IF;
  IF public.delivery_rank(p_state) < public.delivery_rank(v_current) THEN
    RETURN 'unchanged';
  END IF;
  UPDATE public.records
  SET email_delivery = p_state, email_delivery_code = left(p_code, 32),
      email_delivery_diagnostic = left(p_diagnostic, 500), email_delivery_at = now()
  WHERE id = p_record;
  RETURN 'recorded';
END
$$;
COMMENT ON FUNCTION public_email_delivery(uuid, text, text, text) IS
  'Bounce receiver: records a bounce or delivery report (DELIVERED, DEFERRED, BOUNCED, '
  'FAILED) on the email channel of record p_record, whose VERP MAC the caller checked; '
  'recorded, unchanged (weaker than what is recorded) or unknown.';
REVOKE ALL ON FUNCTION public_email_delivery(uuid, text, text, text) FROM PUBLIC;
SELECT grant_public('EXECUTE', 'FUNCTION public_email_delivery(uuid, text, text, text)');
