-- The outbox backlog as metrics (the relay reads it every few seconds).
--
-- The relay serves every tenant and sees no tenant's records outside a tenant scope; like
-- outbox_claim, this SECURITY DEFINER function is its cross-tenant read, and it returns two
-- numbers only. Both come from the fair-dispatch keys (dispatch_batches: one row per batch
-- with PENDING records, and their count), never from a scan of the backlog: the oldest
-- PENDING record of each such batch is one descent of records_progress_idx (tenant_id,
-- batch_id, state, updated_at). A PENDING record's updated_at is when it became PENDING (its
-- upload, or a retry of the FAILED record): the age is how long it has waited. Records of
-- CANCELLED batches are left out, as the relay leaves them.
CREATE OR REPLACE FUNCTION outbox_backlog()
RETURNS TABLE (pending bigint, oldest timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
  SELECT coalesce(sum(d.pending), 0)::bigint,
         min((SELECT min(r.updated_at) FROM public.records r
              WHERE r.tenant_id = d.tenant_id AND r.batch_id = d.batch_id
                AND r.state = 'PENDING'))
  FROM public.dispatch_batches d
  JOIN public.batches b ON b.tenant_id = d.tenant_id AND b.id = d.batch_id
  WHERE d.pending > 0 AND b.state <> 'CANCELLED'
$$;
COMMENT ON FUNCTION outbox_backlog() IS
  'Metrics: the number of PENDING records of every tenant''s batches that are not cancelled, '
  'and the oldest updated_at among them (NULL when there is none).';
REVOKE ALL ON FUNCTION outbox_backlog() FROM PUBLIC;
SELECT grant_relay('EXECUTE', 'FUNCTION outbox_backlog()');
