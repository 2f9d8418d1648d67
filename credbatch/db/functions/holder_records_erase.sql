-- Erasure on request (TenantService.EraseHolder): an org admin erases records of their own
-- tenant at once. The caller finds the holder's records and closes or revokes them in the
-- same transaction, as the application role; only the erasure itself needs the owner's
-- rights (the application role may not delete a certificate).
CREATE OR REPLACE FUNCTION holder_records_erase(p_records uuid[]) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
  v_tenant uuid := public.app_tenant();
BEGIN
  IF v_tenant IS NULL OR NOT 'org_admin' = ANY (public.app_roles()) THEN
    RAISE EXCEPTION 'holder_records_erase needs an org admin''s tenant transaction'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN public.records_erase(v_tenant, p_records, 'ERASURE');
END
$$;
COMMENT ON FUNCTION holder_records_erase(uuid[]) IS
  'EraseHolder: erases the personal data of the records p_records of the caller''s tenant '
  '(org admins only; others'' records are not touched) and returns how many it erased.';
REVOKE ALL ON FUNCTION holder_records_erase(uuid[]) FROM PUBLIC;
SELECT grant_app('EXECUTE', 'FUNCTION holder_records_erase(uuid[])');
