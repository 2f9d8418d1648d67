-- Fair dispatch: taking a batch's records now also moves its virtual time
-- (functions/dispatch_take_records.sql), so the step that only did that is gone.
DROP FUNCTION IF EXISTS dispatch_advance_batch(uuid, uuid, double precision, bigint);
