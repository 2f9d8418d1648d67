-- Fair dispatch, the first step of a pick (outbox_claim composes the steps): the tenant to
-- serve next.
--
-- The tenant key with the least virtual time, among those the claim has not skipped and no
-- other relay holds (SKIP LOCKED: a tenant is served by one relay at a time, the others serve
-- the rest), locked FOR NO KEY UPDATE until the claim's transaction ends. A key held back or
-- idle until now (its virtual time behind the clock, or none yet) starts at the clock, with
-- no credit. With the key come what the pick needs: the tenant's weight and what its sending
-- rates let it send now, per channel (the token buckets of tenant_limits, or of the relay's
-- default rates for a tenant without a row; NULL = unlimited; nothing while the channel's
-- provider throttles the tenant, dispatch_throttle). The tenant's records in flight are the
-- claim's to count (outbox_claim keeps them in a map): a lookup joined to this statement
-- would add plan nodes that every pick starts and stops.
--
-- It runs only inside outbox_claim, as that function's owner and under its search_path and
-- planner settings; it has no SET clause of its own, which every call would pay for, and
-- names every table with its schema.
CREATE OR REPLACE FUNCTION dispatch_choose_tenant(
  p_skip uuid[], p_clock double precision, p_now timestamptz,
  p_emails_per_second double precision, p_sms_per_second double precision,
  OUT tenant_id uuid, OUT vtime double precision, OUT weight double precision,
  OUT batch_clock double precision, OUT email_tokens double precision,
  OUT sms_tokens double precision)
LANGUAGE plpgsql VOLATILE
AS $$
#variable_conflict use_column
DECLARE
  k record;
BEGIN
  SELECT d.tenant_id, d.vtime, d.batch_clock, d.email_tokens, d.sms_tokens, d.tokens_at,
         d.email_throttled_until, d.sms_throttled_until,
         l.tenant_id IS NOT NULL AS limited, l.dispatch_weight,
         l.emails_per_second, l.sms_per_second
    INTO k
  FROM public.dispatch_tenants d
  LEFT JOIN public.tenant_limits l ON l.tenant_id = d.tenant_id
  WHERE d.tenant_id <> ALL (p_skip)
  ORDER BY d.vtime NULLS FIRST
  LIMIT 1
  FOR NO KEY UPDATE OF d SKIP LOCKED;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  tenant_id := k.tenant_id;
  vtime := greatest(coalesce(k.vtime, p_clock), p_clock);
  batch_clock := k.batch_clock;
  -- Computed here, not in the query: dispatch_tokens is then evaluated as a simple
  -- expression, whose plan PL/pgSQL keeps, rather than planned again by every query run.
  IF k.limited THEN
    weight := k.dispatch_weight;
    email_tokens := public.dispatch_tokens(k.email_tokens, k.tokens_at, k.emails_per_second,
                                           p_now);
    sms_tokens := public.dispatch_tokens(k.sms_tokens, k.tokens_at, k.sms_per_second, p_now);
  ELSE
    weight := 1;
    email_tokens := public.dispatch_tokens(k.email_tokens, k.tokens_at, p_emails_per_second,
                                           p_now);
    sms_tokens := public.dispatch_tokens(k.sms_tokens, k.tokens_at, p_sms_per_second, p_now);
  END IF;
  IF k.email_throttled_until > p_now THEN
    email_tokens := 0;
  END IF;
  IF k.sms_throttled_until > p_now THEN
    sms_tokens := 0;
  END IF;
END
$$;
COMMENT ON FUNCTION dispatch_choose_tenant(uuid[], double precision, timestamptz,
                                           double precision, double precision) IS
  'Fair dispatch, a step of outbox_claim: locks the key of the tenant to serve next (least '
  'virtual time, not in p_skip, not held by another relay) and returns the virtual time its '
  'pick starts at (at least p_clock), its weight, its batch clock and the records its sending '
  'rates allow now per channel (NULL = unlimited). All NULL when there is none.';
REVOKE ALL ON FUNCTION dispatch_choose_tenant(uuid[], double precision, timestamptz,
                                              double precision, double precision) FROM PUBLIC;
