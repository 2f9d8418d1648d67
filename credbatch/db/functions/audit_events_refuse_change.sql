-- The audit trail is append-only whatever the grants say: an UPDATE, DELETE or TRUNCATE of
-- audit_events is refused unless it runs as the table's owner (migrations, and audit_prune,
-- which runs as the owner and deletes only entries past the retention period). The
-- application role never owns anything and is never a member of the owner
-- (credbatch.db.migrate checks), so even a mistaken grant to it changes no entry.
-- UPDATE is refused to the owner as well: no code path edits an entry.
CREATE OR REPLACE FUNCTION audit_events_refuse_change() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
  v_owner name;
BEGIN
  SELECT pg_get_userbyid(c.relowner) INTO v_owner FROM pg_class c WHERE c.oid = TG_RELID;
  IF TG_OP = 'UPDATE' OR current_user <> v_owner THEN
    RAISE EXCEPTION 'audit_events is append-only: % refused for role %', TG_OP, current_user
      USING ERRCODE = 'insufficient_privilege',
            HINT = 'entries are removed only by audit_prune, after the retention period';
  END IF;
  IF TG_LEVEL = 'STATEMENT' THEN
    RETURN NULL;
  END IF;
  RETURN OLD;
END
$$;
COMMENT ON FUNCTION audit_events_refuse_change() IS
  'Trigger (BEFORE UPDATE OR DELETE, BEFORE TRUNCATE ON audit_events): refuses UPDATE always '
  'and DELETE or TRUNCATE unless the current role is the table''s owner.';
REVOKE ALL ON FUNCTION audit_events_refuse_change() FROM PUBLIC;
