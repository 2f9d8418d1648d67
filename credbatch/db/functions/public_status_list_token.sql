-- A status list's token as the workers signed and stored it
-- (/tenants/{tenant}/statuslists/{list}); the list's bits are not read: the token carries
-- them, signed.
CREATE OR REPLACE FUNCTION public_status_list_token(p_tenant uuid, p_list uuid)
RETURNS TABLE (token text, expires_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
  SELECT t.token, t.expires_at FROM public.status_list_tokens t
  WHERE t.tenant_id = p_tenant AND t.list_id = p_list
$$;
COMMENT ON FUNCTION public_status_list_token(uuid, uuid) IS
  'Public endpoints: the stored token of the tenant''s status list and when it expires (token '
  'NULL until first signed); no row when the tenant has no such list.';
REVOKE ALL ON FUNCTION public_status_list_token(uuid, uuid) FROM PUBLIC;
SELECT grant_public('EXECUTE', 'FUNCTION public_status_list_token(uuid, uuid)');
