-- The time of an audit entry is the database's, not the writer's: an entry inserted by any
-- role but the owner gets occurred_at = clock_timestamp() whatever the INSERT said, so the
-- application role cannot backdate an entry (nor date one past the retention period, where
-- the janitor would delete it at once). The owner keeps what it writes: a restore from a
-- backup, and the tests of the retention.
CREATE OR REPLACE FUNCTION audit_events_stamp() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  IF current_user <> (SELECT pg_get_userbyid(c.relowner) FROM pg_class c
                      WHERE c.oid = TG_RELID) THEN
    NEW.occurred_at := clock_timestamp();
  END IF;
  RETURN NEW;
END
$$;
COMMENT ON FUNCTION audit_events_stamp() IS
  'Trigger (BEFORE INSERT ON audit_events): occurred_at is the insert''s clock time unless '
  'the owner inserts.';
REVOKE ALL ON FUNCTION audit_events_stamp() FROM PUBLIC;
