-- One step of the audit trail's retention: deletes up to p_limit entries, of any tenant,
-- older than p_retention_days (CREDBATCH_AUDIT_RETENTION_DAYS), oldest first along
-- audit_events_age_idx. Runs as the owner, the only role the append-only trigger
-- (audit_events_refuse_change) lets delete; only the janitor's role may call it, so no
-- tenant-scoped session can shorten the trail. Each step is one short transaction of the
-- caller; nothing else locks audit entries, so a step waits for no one, and a step cut short
-- rolls back whole (the next starts over). Returns how many entries it deleted: fewer than
-- p_limit when nothing more is due.
CREATE OR REPLACE FUNCTION janitor_audit_prune(p_retention_days integer, p_limit integer)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
  v_deleted integer;
BEGIN
  IF p_retention_days IS NULL OR p_retention_days < 1 OR p_limit IS NULL OR p_limit < 1 THEN
    RAISE EXCEPTION 'janitor_audit_prune needs at least one day and one entry per step'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  WITH due AS (
    SELECT a.tenant_id, a.id FROM public.audit_events a
    WHERE a.occurred_at < now() - make_interval(days => p_retention_days)
    ORDER BY a.occurred_at
    LIMIT p_limit
  )
  DELETE FROM public.audit_events a USING due
  WHERE a.tenant_id = due.tenant_id AND a.id = due.id;
  GET DIAGNOSTICS v_deleted = ROW_COUNT;
  RETURN v_deleted;
END
$$;
COMMENT ON FUNCTION janitor_audit_prune(integer, integer) IS
  'Audit retention step: deletes up to p_limit audit entries of any tenant older than '
  'p_retention_days, oldest first; returns how many.';
REVOKE ALL ON FUNCTION janitor_audit_prune(integer, integer) FROM PUBLIC;
SELECT grant_janitor('EXECUTE', 'FUNCTION janitor_audit_prune(integer, integer)');
