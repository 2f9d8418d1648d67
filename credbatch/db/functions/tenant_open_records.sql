-- The upload's quota check (tenant_limits.max_open_records), in the upload's own
-- transaction, after its records are written.
CREATE OR REPLACE FUNCTION tenant_open_records(p_default_max bigint)
RETURNS TABLE (open_records bigint, max_open_records bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_column
DECLARE
  v_tenant uuid := public.app_tenant();
  v_max bigint := p_default_max;
  v_open bigint;
BEGIN
  IF v_tenant IS NULL THEN
    RAISE EXCEPTION 'tenant_open_records needs a tenant transaction'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  SELECT l.max_open_records INTO v_max FROM public.tenant_limits l WHERE l.tenant_id = v_tenant;
  IF NOT FOUND THEN
    v_max := p_default_max;
  END IF;
  IF v_max IS NULL THEN
    RETURN QUERY SELECT NULL::bigint, NULL::bigint;
    RETURN;
  END IF;
  -- One upload of the tenant at a time from here to its commit, so two concurrent uploads
  -- cannot both pass a check that counts neither of the other's records.
  PERFORM pg_advisory_xact_lock(hashtextextended('credbatch.open_records:' || v_tenant, 0));
  SELECT coalesce((SELECT sum(d.pending) FROM public.dispatch_batches d
                   WHERE d.tenant_id = v_tenant), 0)
         + (SELECT count(*) FROM public.records r
            WHERE r.tenant_id = v_tenant AND r.state = 'QUEUED')
    INTO v_open;
  RETURN QUERY SELECT v_open, v_max;
END
$$;
COMMENT ON FUNCTION tenant_open_records(bigint) IS
  'Uploads: the tenant''s open records (PENDING + QUEUED, this transaction''s included) and its '
  'max_open_records (tenant_limits, else p_default_max); both NULL when unlimited. Holds a '
  'per-tenant lock until the transaction ends, so concurrent uploads are checked in turn.';
REVOKE ALL ON FUNCTION tenant_open_records(bigint) FROM PUBLIC;
SELECT grant_app('EXECUTE', 'FUNCTION tenant_open_records(bigint)');
