-- records_batch_state_idx (tenant_id, batch_id, state) is a prefix of records_progress_idx
-- (tenant_id, batch_id, state, updated_at): every query it served, the other serves alike, its
-- range scans and index-only scans included. Each new version of a record (its insert, then
-- QUEUED, ISSUED and INVITED: none is a HOT update, state being indexed) wrote an entry into
-- both; now into one, about a ninth less index work per version.
DROP INDEX IF EXISTS records_batch_state_idx;
