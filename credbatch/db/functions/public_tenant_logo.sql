-- A tenant's logo by its SHA-256, as the URL in its profile names it: only the current logo
-- answers, so a replaced logo stops being served and the URL of each version is immutable.
CREATE OR REPLACE FUNCTION public_tenant_logo(p_tenant uuid, p_sha256 bytea)
RETURNS TABLE (logo bytea, logo_media_type text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
  SELECT p.logo, p.logo_media_type
  FROM public.tenant_profiles p
  WHERE p.tenant_id = p_tenant AND p.logo_sha256 = p_sha256
$$;
COMMENT ON FUNCTION public_tenant_logo(uuid, bytea) IS
  'Public endpoints: the tenant''s current logo if its SHA-256 is p_sha256; no row otherwise.';
REVOKE ALL ON FUNCTION public_tenant_logo(uuid, bytea) FROM PUBLIC;
SELECT grant_public('EXECUTE', 'FUNCTION public_tenant_logo(uuid, bytea)');
