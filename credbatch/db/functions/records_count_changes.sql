-- Appends each statement's net change of records per (batch, state) to batch_count_deltas
-- (migrations/0003_batches.sql says how the counts are kept and read), from statement
-- triggers over the transition tables (records_count_inserts, _updates, _deletes). Rows
-- whose state did not change (the outcome stamping email_sent_at on a CLAIMED record) net to
-- zero and add nothing.
--
-- Two more keys count what GetBatch shows beside the states: DELIVERED, the records whose
-- invitation was delivered on some channel, and BOUNCED, those whose invitation bounced or
-- failed on some channel (a record may be in both). Counted here, a batch's figures are a
-- few count rows to read however many records it has; counted from the records, they cost
-- a scan of a batch's delivered records on every read, which grows with the batch.
CREATE OR REPLACE FUNCTION records_count_changes() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO public.batch_count_deltas (tenant_id, batch_id, state, n, last_update)
    SELECT tenant_id, batch_id, state, count(*), max(updated_at)
    FROM new_rows GROUP BY tenant_id, batch_id, state
    UNION ALL
    SELECT tenant_id, batch_id, 'DELIVERED', count(*), NULL::timestamptz
    FROM new_rows WHERE email_delivery = 'DELIVERED' OR sms_delivery = 'DELIVERED'
    GROUP BY tenant_id, batch_id
    UNION ALL
    SELECT tenant_id, batch_id, 'BOUNCED', count(*), NULL::timestamptz
    FROM new_rows
    WHERE email_delivery IN ('BOUNCED', 'FAILED') OR sms_delivery IN ('BOUNCED', 'FAILED')
    GROUP BY tenant_id, batch_id;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO public.batch_count_deltas (tenant_id, batch_id, state, n, last_update)
    SELECT tenant_id, batch_id, state, -count(*), NULL::timestamptz
    FROM old_rows GROUP BY tenant_id, batch_id, state
    UNION ALL
    SELECT tenant_id, batch_id, 'DELIVERED', -count(*), NULL::timestamptz
    FROM old_rows WHERE email_delivery = 'DELIVERED' OR sms_delivery = 'DELIVERED'
    GROUP BY tenant_id, batch_id
    UNION ALL
    SELECT tenant_id, batch_id, 'BOUNCED', -count(*), NULL::timestamptz
    FROM old_rows
    WHERE email_delivery IN ('BOUNCED', 'FAILED') OR sms_delivery IN ('BOUNCED', 'FAILED')
    GROUP BY tenant_id, batch_id;
  ELSE
    INSERT INTO public.batch_count_deltas (tenant_id, batch_id, state, n, last_update)
    SELECT c.tenant_id, c.batch_id, c.state, sum(c.n), max(c.last_update)
    FROM (
      SELECT tenant_id, batch_id, state, 1 AS n, updated_at AS last_update FROM new_rows
      UNION ALL
      SELECT tenant_id, batch_id, state, -1, NULL::timestamptz FROM old_rows
      UNION ALL
      SELECT tenant_id, batch_id, 'DELIVERED', 1, NULL::timestamptz FROM new_rows
      WHERE email_delivery = 'DELIVERED' OR sms_delivery = 'DELIVERED'
      UNION ALL
      SELECT tenant_id, batch_id, 'DELIVERED', -1, NULL::timestamptz FROM old_rows
      WHERE email_delivery = 'DELIVERED' OR sms_delivery = 'DELIVERED'
      UNION ALL
      SELECT tenant_id, batch_id, 'BOUNCED', 1, NULL::timestamptz FROM new_rows
      WHERE email_delivery IN ('BOUNCED', 'FAILED') OR sms_delivery IN ('BOUNCED', 'FAILED')
      UNION ALL
      SELECT tenant_id, batch_id, 'BOUNCED', -1, NULL::timestamptz FROM old_rows
      WHERE email_delivery IN ('BOUNCED', 'FAILED') OR sms_delivery IN ('BOUNCED', 'FAILED')
    ) c
    GROUP BY c.tenant_id, c.batch_id, c.state
    HAVING sum(c.n) <> 0;
  END IF;
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION records_count_changes() IS
  'Trigger (AFTER INSERT / UPDATE / DELETE ON records FOR EACH STATEMENT): appends the '
  'statement''s net change of records per (batch, state), and of its records delivered '
  '(DELIVERED) and bounced or failed (BOUNCED) on some channel, to batch_count_deltas. '
  'SECURITY DEFINER: it writes only aggregates of rows the statement itself changed.';
REVOKE ALL ON FUNCTION records_count_changes() FROM PUBLIC;
