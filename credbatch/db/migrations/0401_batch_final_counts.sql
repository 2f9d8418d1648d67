-- 0401: the record counts of a finished batch, stored once when it finishes.
--
-- ListBatches shows the counts per record state of every batch of a page; counting them live
-- reads ~2,000 index entries per batch. A finished batch's records no longer change, so its
-- counts are computed once, by a trigger on the batch's own state transition (one grouped
-- query per batch that finishes, never per record, and no counter row every worker updates):
-- readers use final_counts when it is set and count live only when it is NULL.
--
-- Which transitions set or clear it (every UPDATE that assigns batches.state):
--   * issuance worker COMPLETE_BATCHES: IN_PROGRESS/QUEUED -> COMPLETED(_WITH_ERRORS): set;
--   * issuance worker BATCHES_IN_PROGRESS: QUEUED -> IN_PROGRESS: cleared (was NULL);
--   * RetryFailedRecords: -> IN_PROGRESS after its FAILED records became PENDING, in the
--     same transaction: cleared, so the retried batch counts live again;
--   * CancelBatch: -> CANCELLED: cleared. A cancelled batch keeps counting live, because its
--     ISSUED records can still become INVITED.
-- CLAIMED (a future record state, INVITED -> CLAIMED after the batch completed) changes a
-- finished batch's counts without a batch state transition: when it lands, the code that
-- claims a record must clear final_counts (or update it) in the claiming transaction.
ALTER TABLE batches ADD COLUMN final_counts jsonb
  CHECK (final_counts IS NULL OR jsonb_typeof(final_counts) = 'object');
COMMENT ON COLUMN batches.final_counts IS
  'Records per state ({"INVITED": n, "FAILED": m, ...}) of a COMPLETED or '
  'COMPLETED_WITH_ERRORS batch, computed by the batches_final_counts trigger when the state '
  'was set; NULL in every other state (readers then count the records live).';

-- SECURITY INVOKER (the default, spelled out): the records query runs with the rights and
-- row-level security of whoever updates the batch. Everyone the batches_update policy lets
-- change a batch's state (org_admin, service, the creating issuer) sees all of that batch's
-- records under records_select, and the owner has its own all-rows policies, so the count is
-- complete for every writer; a definer function would bypass RLS and is deliberately avoided.
CREATE FUNCTION batches_final_counts() RETURNS trigger
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
  last_change timestamptz;
BEGIN
  IF NEW.state IN ('COMPLETED', 'COMPLETED_WITH_ERRORS') THEN
    -- Index-only scan of records_progress_idx (tenant_id, batch_id, state, updated_at).
    SELECT coalesce(jsonb_object_agg(s.state, s.n), '{}'::jsonb), max(s.last_update)
      INTO NEW.final_counts, last_change
    FROM (
      SELECT r.state, count(*) AS n, max(r.updated_at) AS last_update
      FROM public.records r
      WHERE r.tenant_id = NEW.tenant_id AND r.batch_id = NEW.id
      GROUP BY r.state
    ) s;
    -- Readers no longer look at the records of a batch with final_counts, so its updated_at
    -- must already cover the last record change (the worker's now() normally does).
    IF last_change IS NOT NULL AND last_change > NEW.updated_at THEN
      NEW.updated_at := last_change;
    END IF;
  ELSE
    NEW.final_counts := NULL;
  END IF;
  RETURN NEW;
END
$$;
COMMENT ON FUNCTION batches_final_counts() IS
  'Trigger (BEFORE UPDATE OF state ON batches): stores the per-state record counts in '
  'final_counts when the batch becomes COMPLETED or COMPLETED_WITH_ERRORS, clears them on '
  'any other state. SECURITY INVOKER: the records query is subject to RLS.';

CREATE TRIGGER batches_final_counts
  BEFORE UPDATE OF state ON batches
  FOR EACH ROW EXECUTE FUNCTION batches_final_counts();
