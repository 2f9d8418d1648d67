-- 0005: the outbox relay's two entry points. The relay serves every tenant, so it cannot
-- run under one tenant's RLS scope: these SECURITY DEFINER functions, owned by the owner,
-- are the only cross-tenant access the application role has, and they expose exactly the
-- job fields (no personal data).

CREATE FUNCTION outbox_claim(p_limit integer)
RETURNS TABLE (tenant_id uuid, batch_id uuid, record_id uuid, attempt integer,
               traceparent text)
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
  SELECT r.tenant_id, r.batch_id, r.id, r.attempt, b.traceparent
  FROM public.records r
  JOIN public.batches b ON b.tenant_id = r.tenant_id AND b.id = r.batch_id
  WHERE r.state = 'PENDING' AND b.state <> 'CANCELLED'
  ORDER BY r.created_at, r.batch_id, r.row_number
  LIMIT greatest(coalesce(p_limit, 0), 0)
  FOR UPDATE OF r SKIP LOCKED
$$;
COMMENT ON FUNCTION outbox_claim(integer) IS
  'Relay: up to p_limit PENDING records of all tenants, oldest first, locked FOR UPDATE '
  'until the caller''s transaction ends (rows locked by another relay are skipped); records '
  'of CANCELLED batches are left out. Publish them, then outbox_mark_queued, then commit.';
REVOKE ALL ON FUNCTION outbox_claim(integer) FROM PUBLIC;
SELECT grant_app('EXECUTE', 'FUNCTION outbox_claim(integer)');

CREATE FUNCTION outbox_mark_queued(p_tenants uuid[], p_ids uuid[]) RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
  WITH done AS (
    UPDATE public.records r
    SET state = 'QUEUED', queued_at = now(), updated_at = now()
    FROM unnest(p_tenants, p_ids) AS u(tenant_id, id)
    WHERE r.tenant_id = u.tenant_id AND r.id = u.id AND r.state = 'PENDING'
    RETURNING 1
  )
  SELECT count(*)::integer FROM done
$$;
COMMENT ON FUNCTION outbox_mark_queued(uuid[], uuid[]) IS
  'Relay: marks the records (p_tenants[i], p_ids[i]) QUEUED (queued_at = now()) once their '
  'jobs are confirmed by the broker; rows no longer PENDING are left alone. Returns the '
  'number of rows changed.';
REVOKE ALL ON FUNCTION outbox_mark_queued(uuid[], uuid[]) FROM PUBLIC;
SELECT grant_app('EXECUTE', 'FUNCTION outbox_mark_queued(uuid[], uuid[])');
