-- The send number (p_sends) joined the signature: the function before it took no send.
DROP FUNCTION IF EXISTS public_email_deliveries(uuid[], text[], text[], text[]);
-- Records what bounces and delivery reports say about records' email invitations, several
-- at once: the bounce receiver (services.bounces, as the public endpoints' role) gathers the
-- reports its connections are answering and writes them in one statement and commit. It calls
-- this only with (record id, send number) pairs whose VERP MAC it checked, so a forged report
-- names no record it could not name before; the unique index records_id_idx makes an id one
-- record of one tenant. The records' states are never touched (a REVOKED or CLAIMED record
-- keeps its own).
-- A report counts only for the send now out (records.email_send): a late bounce of an
-- invitation that a correction or a resend replaced is 'stale' and leaves the new send's
-- state alone (the address it bounced from may be the one just corrected).
-- A report replaces a state of no higher rank (delivery_rank): ACCEPTED and DEFERRED yield
-- to anything, DELIVERED to a later hard bounce (a relay that said "relayed" and whose next
-- hop bounced), BOUNCED and FAILED only to each other; so reports arriving out of order end
-- on the strongest news. Of two reports for one send in one call the stronger counts.
-- A record whose personal data was erased (purged_at: retention or EraseHolder) takes no
-- report: what a mailbox said about an erased holder is no longer ours to keep, and the
-- record changes no more (no record.bounced either). Its report is 'gone', which the receiver
-- answers 250 like any other, so the reporting system stops retrying.
-- Rows are locked in id order, as every writer of records locks them.
-- Returns, per position of p_records: 'recorded', 'unchanged' (weaker than what is
-- recorded), 'stale' (an earlier send's), 'gone' (the record was purged) or 'unknown' (no
-- such record).
CREATE OR REPLACE FUNCTION public_email_deliveries(
  p_records uuid[], p_sends integer[], p_states text[], p_codes text[], p_diagnostics text[]
) RETURNS text[]
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
  v_outcomes text[];
BEGIN
  IF EXISTS (SELECT 1 FROM unnest(p_states) AS s(state)
             WHERE state IS NULL OR state NOT IN ('DELIVERED', 'DEFERRED', 'BOUNCED', 'FAILED'))
  THEN
    RAISE EXCEPTION 'a delivery report''s state must be DELIVERED, DEFERRED, BOUNCED or FAILED'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF cardinality(p_sends) IS DISTINCT FROM cardinality(p_records) THEN
    RAISE EXCEPTION 'each report names one send: p_sends must be as long as p_records'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  WITH input AS (
    SELECT u.id, u.send, u.state, left(u.code, 32) AS code,
           left(u.diagnostic, 500) AS diagnostic, u.ord
    FROM unnest(p_records, p_sends, p_states, p_codes, p_diagnostics) WITH ORDINALITY
         AS u(id, send, state, code, diagnostic, ord)
  ), locked AS (
    SELECT r.tenant_id, r.id, r.email_delivery, r.email_send, r.purged_at
    FROM public.records r
    WHERE r.id IN (SELECT id FROM input)
    ORDER BY r.id
    FOR NO KEY UPDATE
  ), live AS (
    SELECT DISTINCT ON (i.id) i.id, i.state, i.code, i.diagnostic
    FROM input i JOIN locked l ON l.id = i.id
    WHERE l.purged_at IS NULL AND l.email_send = i.send
    ORDER BY i.id, public.delivery_rank(i.state) DESC, i.ord DESC
  ), changed AS (
    UPDATE public.records r
    SET email_delivery = c.state, email_delivery_code = c.code,
        email_delivery_diagnostic = c.diagnostic, email_delivery_at = now()
    FROM live c JOIN locked l ON l.id = c.id
    WHERE r.tenant_id = l.tenant_id AND r.id = l.id
      AND public.delivery_rank(c.state) >= public.delivery_rank(l.email_delivery)
    RETURNING r.id
  )
  SELECT array_agg(CASE WHEN l.id IS NULL THEN 'unknown'
                        WHEN l.purged_at IS NOT NULL THEN 'gone'
                        WHEN l.email_send IS DISTINCT FROM i.send THEN 'stale'
                        WHEN c.id IS NOT NULL THEN 'recorded'
                        ELSE 'unchanged' END ORDER BY i.ord)
  INTO v_outcomes
  FROM input i
  LEFT JOIN locked l ON l.id = i.id
  LEFT JOIN changed c ON c.id = i.id;
  RETURN coalesce(v_outcomes, '{}');
END
$$;
COMMENT ON FUNCTION public_email_deliveries(uuid[], integer[], text[], text[], text[]) IS
  'Bounce receiver: records bounce and delivery reports (DELIVERED, DEFERRED, BOUNCED, '
  'FAILED, with code and diagnostic) on the email channel of records whose VERP MAC (record '
  'and send) the caller checked; per report recorded, unchanged (weaker than what is '
  'recorded), stale (an earlier send''s: nothing recorded), gone (purged: nothing recorded) '
  'or unknown.';
REVOKE ALL ON FUNCTION public_email_deliveries(uuid[], integer[], text[], text[], text[])
  FROM PUBLIC;
SELECT grant_public(
  'EXECUTE', 'FUNCTION public_email_deliveries(uuid[], integer[], text[], text[], text[])'
);
