-- 0600: the outbox backlog as a metric (the relay reads it every few seconds).
--
-- The relay runs as the application role, which sees no tenant's records outside a tenant
-- scope; like outbox_claim, this SECURITY DEFINER function is its cross-tenant read, and it
-- returns two numbers only. Its cost follows the open batches and their PENDING records, never
-- the whole records table: the open batches come from a partial index, and each one's PENDING
-- records from records_progress_idx (tenant_id, batch_id, state, updated_at) alone.
-- updated_at of a PENDING record is when it became PENDING (its upload, or a retry of the
-- FAILED record), so the age is how long it has waited in the outbox.

CREATE INDEX batches_open_idx ON batches (tenant_id, id) WHERE state IN ('QUEUED', 'IN_PROGRESS');

CREATE FUNCTION outbox_backlog()
RETURNS TABLE (pending bigint, oldest timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
  SELECT coalesce(sum(p.n), 0)::bigint, min(p.oldest)
  FROM public.batches b
  CROSS JOIN LATERAL (
    SELECT count(*) AS n, min(r.updated_at) AS oldest
    FROM public.records r
    WHERE r.tenant_id = b.tenant_id AND r.batch_id = b.id AND r.state = 'PENDING'
  ) p
  WHERE b.state IN ('QUEUED', 'IN_PROGRESS')
$$;
COMMENT ON FUNCTION outbox_backlog() IS
  'Metrics: the number of PENDING records of open (QUEUED, IN_PROGRESS) batches of every '
  'tenant, and the oldest updated_at among them (NULL when there is none).';
REVOKE ALL ON FUNCTION outbox_backlog() FROM PUBLIC;
SELECT grant_app('EXECUTE', 'FUNCTION outbox_backlog()');
