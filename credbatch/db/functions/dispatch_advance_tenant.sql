-- Fair dispatch, after a tenant's pick took records (outbox_claim composes the steps):
--
--   * its virtual time moves from where the pick started by the records taken over its
--     weight: a tenant of weight 2 is picked again after twice the records of one of weight 1;
--   * its batch clock moves up to the least virtual time of its batches still competing (the
--     batches this claim skipped, held back or done, excluded), where a batch of the tenant
--     that becomes active starts;
--   * its token buckets are stored as counted down by the pick, at p_now; a channel its
--     provider throttles keeps its bucket as it was (the pick counted it empty).
--
-- It runs only inside outbox_claim, as that function's owner and under its search_path and
-- planner settings; it has no SET clause of its own, which every call would pay for, and
-- names every table with its schema.
CREATE OR REPLACE FUNCTION dispatch_advance_tenant(
  p_tenant uuid, p_vtime double precision, p_taken bigint, p_weight double precision,
  p_skip_batches uuid[], p_email_tokens double precision, p_sms_tokens double precision,
  p_now timestamptz)
RETURNS double precision
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
  v_vtime double precision := p_vtime + p_taken / p_weight;
BEGIN
  UPDATE public.dispatch_tenants d
  SET vtime = v_vtime,
      batch_clock = greatest(d.batch_clock, coalesce(
        (SELECT min(x.vtime) FROM public.dispatch_batches x
         WHERE x.tenant_id = p_tenant AND x.batch_id <> ALL (p_skip_batches)),
        d.batch_clock)),
      email_tokens = CASE WHEN d.email_throttled_until > p_now THEN d.email_tokens
                          ELSE p_email_tokens END,
      sms_tokens = CASE WHEN d.sms_throttled_until > p_now THEN d.sms_tokens
                        ELSE p_sms_tokens END,
      tokens_at = p_now
  WHERE d.tenant_id = p_tenant;
  RETURN v_vtime;
END
$$;
COMMENT ON FUNCTION dispatch_advance_tenant(uuid, double precision, bigint, double precision,
                                            uuid[], double precision, double precision,
                                            timestamptz) IS
  'Fair dispatch, a step of outbox_claim: sets the tenant''s virtual time to p_vtime (where its '
  'pick started) plus p_taken / p_weight, moves its batch clock up to its least batch virtual '
  'time outside p_skip_batches, and stores its token buckets as of p_now. Returns the new '
  'virtual time.';
REVOKE ALL ON FUNCTION dispatch_advance_tenant(uuid, double precision, bigint, double precision,
                                               uuid[], double precision, double precision,
                                               timestamptz) FROM PUBLIC;
