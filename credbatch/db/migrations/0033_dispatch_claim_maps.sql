-- Fair dispatch: the claim counts the records in flight in two maps of its own
-- (functions/outbox_claim.sql), looked up by an expression rather than by the steps' queries,
-- so the steps no longer take the list of dispatch_batch_flight rows, and the type is gone.
-- CASCADE drops the steps' signatures that named it, on databases migrated before.
DROP TYPE IF EXISTS dispatch_batch_flight CASCADE;
