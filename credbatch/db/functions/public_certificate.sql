-- A certificate's PDF by its unguessable id (Cred_URL, /c/{id}); the id carries its tenant,
-- which the caller decodes and passes, so the lookup stays within one tenant's rows.
CREATE OR REPLACE FUNCTION public_certificate(p_tenant uuid, p_id text) RETURNS bytea
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
  SELECT c.pdf FROM public.certificates c WHERE c.tenant_id = p_tenant AND c.id = p_id
$$;
COMMENT ON FUNCTION public_certificate(uuid, text) IS
  'Public endpoints: the PDF of the tenant''s certificate p_id, NULL when there is none.';
REVOKE ALL ON FUNCTION public_certificate(uuid, text) FROM PUBLIC;
SELECT grant_public('EXECUTE', 'FUNCTION public_certificate(uuid, text)');
