-- ListBatches filtered by state (state = COMPLETED_WITH_ERRORS, the batches to look at) reads
-- the tenant's batches of that state newest first, as batches_created_idx serves the list
-- unfiltered: without it, a rare state made the page a read and sort of every batch of the
-- tenant (12-14 ms for a tenant with 20,000 batches, bench/RESULTS.md "History"), a cost
-- that grows with the tenant's history.
CREATE INDEX batches_state_idx ON batches (tenant_id, state, created_at DESC, id DESC);

-- An org admin or a service account sees every batch of its tenant (the batches policies),
-- and every record belongs to a batch of its tenant (the foreign key), so for them the
-- records' "its batch is visible" check is true of every row of the tenant: said so first, it
-- spares their reads a probe of batches per record. The planner runs that probe per row
-- whenever it expects few rows, and a history of small batches makes it expect one row from
-- any range of a large batch (the row numbers' statistics are those of the small batches): a
-- 100,000-row report paid 100,000 probes (bench/RESULTS.md, "History"). Issuers and
-- observers keep the check, which for them is the rule.
ALTER POLICY records_select ON records
  USING (tenant_id = app_tenant() AND (
    app_roles() && ARRAY['org_admin', 'service']
    OR EXISTS (SELECT 1 FROM batches b
               WHERE b.tenant_id = records.tenant_id AND b.id = records.batch_id)));
