-- 0400: batch progress reads (BatchStatusService).
--
-- Counts per state, the time of the last record change and the recent completions of one
-- batch (GetBatch, ListBatches, WatchBatch) all come from this index alone (index-only scans):
-- grouped by state, max(updated_at) per state, and a short backward range per terminal state
-- for the throughput estimate. It costs one more index entry per record state change, which
-- records_batch_state_idx already makes a non-HOT update.
CREATE INDEX records_progress_idx ON records (tenant_id, batch_id, state, updated_at);
