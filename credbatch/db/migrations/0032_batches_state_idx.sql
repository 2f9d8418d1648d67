-- ListBatches filtered by state (state = COMPLETED_WITH_ERRORS, the batches to look at) reads
-- the tenant's batches of that state newest first, as batches_created_idx serves the list
-- unfiltered: without it, a rare state made the page a read and sort of every batch of the
-- tenant (12-14 ms for a tenant with 20,000 batches, bench/RESULTS.md "History"), a cost
-- that grows with the tenant's history.
CREATE INDEX batches_state_idx ON batches (tenant_id, state, created_at DESC, id DESC);
