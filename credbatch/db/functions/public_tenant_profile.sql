-- What the public endpoints show of an issuer: its profile (name per locale, colours, support
-- contact, locale) and its logo's digest and media type, for the claim page, the issuer
-- metadata and the type metadata. Not the logo's bytes (public_tenant_logo serves those), the
-- message sender settings or the retention and reminder defaults, which no holder sees.
CREATE OR REPLACE FUNCTION public_tenant_profile(p_tenant uuid)
RETURNS TABLE (display_name text, display_names jsonb, logo_sha256 bytea, logo_media_type text,
               primary_color text, background_color text, support_email text,
               support_url text, default_locale text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
  SELECT p.display_name, p.display_names, p.logo_sha256, p.logo_media_type, p.primary_color,
         p.background_color, p.support_email, p.support_url, p.default_locale
  FROM public.tenant_profiles p
  WHERE p.tenant_id = p_tenant
$$;
COMMENT ON FUNCTION public_tenant_profile(uuid) IS
  'Public endpoints: the tenant''s profile as holders see it (no logo bytes, no sender or '
  'retention settings); no row when the tenant has none.';
REVOKE ALL ON FUNCTION public_tenant_profile(uuid) FROM PUBLIC;
SELECT grant_public('EXECUTE', 'FUNCTION public_tenant_profile(uuid)');
