-- One step of the pruning of what is kept only for a while: deletes at most p_limit rows of
-- one kind (p_what) that p_before makes old enough, oldest first, and returns how many it
-- deleted (fewer than p_limit: nothing more is due). Each step is one short transaction of
-- the caller; rows another transaction holds are skipped (SKIP LOCKED), so pruning never
-- waits for, nor holds up, the dispatchers, the relay or the public endpoints. A step cut by
-- a crash rolls back whole and the next one finds the same rows: steps are idempotent.
--
-- p_what, and what is due:
--   webhook_deliveries  finished deliveries (SUCCEEDED, FAILED) completed before p_before;
--   webhook_events      events created before p_before that no delivery refers to any more
--                       (a PENDING delivery keeps its event);
--   spent_nonces        spent c_nonces that expired before p_before (a nonce is refused by
--                       its expiry anyway, so its row guards nothing after it);
--   offers              credential offers exchanged (used) that expired before p_before. An
--                       unused offer stays until its record's retention purge erases it: a
--                       resend derives the next offer's codes from the offers it replaced, and
--                       an unused offer of a revoked record answers 410 rather than 404;
--   access_tokens       wallet access tokens that expired before p_before;
--   idempotency_keys    request ids (and the ResendInvitations answers they name) recorded
--                       before p_before: a retry after that is a new request;
--   dispatch            fair-dispatch keys left behind: batches with nothing PENDING whose
--                       batch ended before p_before, tenants without a batch to dispatch and
--                       no throttle in force, and zero counts of batches ended before p_before;
--   send_stamps         stamps of accepted sends (record_sends) made before p_before whose
--                       record's outcome is written (it is no longer ISSUED): the record's
--                       email_sent_at / sms_sent_at then hold the same fact.
CREATE OR REPLACE FUNCTION janitor_prune(p_what text, p_before timestamptz, p_limit integer)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
  v_n integer := 0;
  v_more integer;
BEGIN
  IF p_before IS NULL OR p_limit IS NULL OR p_limit < 1 THEN
    RAISE EXCEPTION 'janitor_prune needs a cut-off time and at least one row per step'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  CASE p_what
  WHEN 'webhook_deliveries' THEN
    DELETE FROM public.webhook_deliveries d
    WHERE (d.tenant_id, d.id) IN (
      SELECT x.tenant_id, x.id FROM public.webhook_deliveries x
      WHERE x.state <> 'PENDING' AND x.completed_at < p_before
      ORDER BY x.completed_at LIMIT p_limit FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS v_n = ROW_COUNT;
  WHEN 'webhook_events' THEN
    DELETE FROM public.webhook_events e
    WHERE (e.tenant_id, e.id) IN (
      SELECT x.tenant_id, x.id FROM public.webhook_events x
      WHERE x.created_at < p_before
        AND NOT EXISTS (SELECT 1 FROM public.webhook_deliveries d
                        WHERE d.tenant_id = x.tenant_id AND d.event_id = x.id)
      ORDER BY x.created_at LIMIT p_limit FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS v_n = ROW_COUNT;
  WHEN 'spent_nonces' THEN
    DELETE FROM public.oid4vci_spent_nonces n
    WHERE (n.tenant_id, n.nonce_hash) IN (
      SELECT x.tenant_id, x.nonce_hash FROM public.oid4vci_spent_nonces x
      WHERE x.expires_at < p_before
      ORDER BY x.expires_at LIMIT p_limit FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS v_n = ROW_COUNT;
  WHEN 'offers' THEN
    DELETE FROM public.oid4vci_offers o
    WHERE (o.tenant_id, o.record_id) IN (
      SELECT x.tenant_id, x.record_id FROM public.oid4vci_offers x
      WHERE x.used_at IS NOT NULL AND x.expires_at < p_before
      ORDER BY x.expires_at LIMIT p_limit FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS v_n = ROW_COUNT;
  WHEN 'access_tokens' THEN
    DELETE FROM public.oid4vci_access_tokens t
    WHERE (t.tenant_id, t.token_hash) IN (
      SELECT x.tenant_id, x.token_hash FROM public.oid4vci_access_tokens x
      WHERE x.expires_at < p_before
      ORDER BY x.expires_at LIMIT p_limit FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS v_n = ROW_COUNT;
  WHEN 'idempotency_keys' THEN
    DELETE FROM public.idempotency_keys k
    WHERE (k.tenant_id, k.kind, k.request_id) IN (
      SELECT x.tenant_id, x.kind, x.request_id FROM public.idempotency_keys x
      WHERE x.created_at < p_before
      ORDER BY x.created_at LIMIT p_limit FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    DELETE FROM public.invitation_resends i
    WHERE (i.tenant_id, i.id) IN (
      SELECT x.tenant_id, x.id FROM public.invitation_resends x
      WHERE x.created_at < p_before
      ORDER BY x.created_at LIMIT p_limit FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS v_more = ROW_COUNT;
    v_n := greatest(v_n, v_more);
  WHEN 'dispatch' THEN
    DELETE FROM public.dispatch_batches d
    WHERE (d.tenant_id, d.batch_id) IN (
      SELECT x.tenant_id, x.batch_id FROM public.dispatch_batches x
      JOIN public.batches b ON b.tenant_id = x.tenant_id AND b.id = x.batch_id
      WHERE coalesce(b.completed_at, b.cancelled_at) < p_before
        AND NOT EXISTS (SELECT 1 FROM public.records r
                        WHERE r.tenant_id = x.tenant_id AND r.batch_id = x.batch_id
                          AND r.state = 'PENDING')
      LIMIT p_limit FOR UPDATE OF x SKIP LOCKED);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    DELETE FROM public.dispatch_tenants t
    WHERE t.tenant_id IN (
      SELECT x.tenant_id FROM public.dispatch_tenants x
      WHERE NOT EXISTS (SELECT 1 FROM public.dispatch_batches d WHERE d.tenant_id = x.tenant_id)
        AND coalesce(x.email_throttled_until, '-infinity') < now()
        AND coalesce(x.sms_throttled_until, '-infinity') < now()
      LIMIT p_limit FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS v_more = ROW_COUNT;
    v_n := greatest(v_n, v_more);
    DELETE FROM public.batch_counts c
    WHERE (c.tenant_id, c.batch_id, c.state) IN (
      SELECT x.tenant_id, x.batch_id, x.state FROM public.batch_counts x
      JOIN public.batches b ON b.tenant_id = x.tenant_id AND b.id = x.batch_id
      WHERE x.n = 0 AND coalesce(b.completed_at, b.cancelled_at) < p_before
      LIMIT p_limit FOR UPDATE OF x SKIP LOCKED);
    GET DIAGNOSTICS v_more = ROW_COUNT;
    v_n := greatest(v_n, v_more);
  WHEN 'send_stamps' THEN
    DELETE FROM public.record_sends s
    WHERE (s.tenant_id, s.record_id, s.medium) IN (
      SELECT x.tenant_id, x.record_id, x.medium FROM public.record_sends x
      WHERE x.sent_at < p_before
        AND NOT EXISTS (SELECT 1 FROM public.records r
                        WHERE r.tenant_id = x.tenant_id AND r.id = x.record_id
                          AND r.state = 'ISSUED')
      ORDER BY x.sent_at LIMIT p_limit FOR UPDATE OF x SKIP LOCKED);
    GET DIAGNOSTICS v_n = ROW_COUNT;
  ELSE
    RAISE EXCEPTION 'janitor_prune: unknown kind %', p_what
      USING ERRCODE = 'invalid_parameter_value';
  END CASE;
  RETURN v_n;
END
$$;
COMMENT ON FUNCTION janitor_prune(text, timestamptz, integer) IS
  'Pruning step: deletes at most p_limit rows of kind p_what (webhook_deliveries, '
  'webhook_events, spent_nonces, offers, access_tokens, idempotency_keys, dispatch, '
  'send_stamps) due '
  'before p_before, oldest first, skipping locked rows; returns how many (per table, the '
  'most of the tables it prunes).';
REVOKE ALL ON FUNCTION janitor_prune(text, timestamptz, integer) FROM PUBLIC;
SELECT grant_janitor('EXECUTE', 'FUNCTION janitor_prune(text, timestamptz, integer)');
