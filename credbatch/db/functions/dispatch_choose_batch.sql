-- Fair dispatch, the second step of a pick (outbox_claim composes the steps): the batch of the
-- tenant picked to take records from next.
--
-- The tenant's batch key with the least virtual time, among those the claim has not skipped
-- and no other relay holds, locked FOR UPDATE until the claim's transaction ends, with the
-- batch's mediums and trace context (what the claim counts in flight for the batch is the
-- claim's to look up, as for the tenant). A key idle until now starts at the tenant's batch
-- clock, as a tenant starts at the clock. Keys whose batch is CANCELLED or gone are dropped
-- on the way. When the tenant has no batch key left at all, its own key is dropped too,
-- unless an upload or a retry adding a batch still holds it (FOR KEY SHARE, see
-- dispatch_note_pending) or a reminder of the tenant is due (reminder_claim spends the key's
-- token buckets).
--
-- It runs only inside outbox_claim, as that function's owner and under its search_path and
-- planner settings; it has no SET clause of its own, which every call would pay for, and
-- names every table with its schema.
CREATE OR REPLACE FUNCTION dispatch_choose_batch(
  p_tenant uuid, p_skip uuid[], p_batch_clock double precision,
  OUT batch_id uuid, OUT vtime double precision, OUT mediums text[], OUT traceparent text)
LANGUAGE plpgsql VOLATILE
AS $$
#variable_conflict use_column
DECLARE
  v_live boolean;
BEGIN
  LOOP
    SELECT d.batch_id, greatest(coalesce(d.vtime, p_batch_clock), p_batch_clock),
           bt.mediums, bt.traceparent, bt.id IS NOT NULL AND bt.state <> 'CANCELLED'
      INTO batch_id, vtime, mediums, traceparent, v_live
    FROM public.dispatch_batches d
    LEFT JOIN public.batches bt ON bt.tenant_id = d.tenant_id AND bt.id = d.batch_id
    WHERE d.tenant_id = p_tenant AND d.batch_id <> ALL (p_skip)
    ORDER BY d.vtime NULLS FIRST
    LIMIT 1
    FOR UPDATE OF d SKIP LOCKED;
    IF NOT FOUND THEN
      -- A tenant with a reminder due keeps its key (and its buckets) for reminder_claim.
      IF NOT EXISTS (SELECT 1 FROM public.dispatch_batches d WHERE d.tenant_id = p_tenant)
         AND NOT EXISTS (SELECT 1 FROM public.record_reminders m
                         WHERE m.tenant_id = p_tenant AND m.due_at <= clock_timestamp())
      THEN
        PERFORM 1 FROM public.dispatch_tenants d WHERE d.tenant_id = p_tenant
        FOR UPDATE SKIP LOCKED;
        IF FOUND THEN
          DELETE FROM public.dispatch_tenants d WHERE d.tenant_id = p_tenant;
        END IF;
      END IF;
      RETURN;
    END IF;
    EXIT WHEN v_live;
    DELETE FROM public.dispatch_batches d
    WHERE d.tenant_id = p_tenant AND d.batch_id = dispatch_choose_batch.batch_id;
  END LOOP;
END
$$;
COMMENT ON FUNCTION dispatch_choose_batch(uuid, uuid[], double precision) IS
  'Fair dispatch, a step of outbox_claim: locks the key of the batch of p_tenant to take '
  'records from next (least virtual time, not in p_skip, not held by another relay, not '
  'CANCELLED) and returns the virtual time its pick starts at (at least p_batch_clock), its '
  'mediums and trace context. All NULL when there is none; drops the keys of cancelled or '
  'missing batches, and the tenant''s key once it has no batch left and no reminder due.';
REVOKE ALL ON FUNCTION dispatch_choose_batch(uuid, uuid[], double precision) FROM PUBLIC;
