-- A certificate by its unguessable id (Cred_URL, /c/{id}); the id carries its tenant, which
-- the caller decodes and passes, so the lookup stays within one tenant's rows.
-- The certificate follows its credential: once the record is REVOKED the row says so and its
-- PDF stays in the database (NULL here), so no bug in the public process can hand it out.
-- The return type changed from bytea (the PDF alone) to a row: CREATE OR REPLACE cannot.
DROP FUNCTION IF EXISTS public_certificate(uuid, text);
CREATE OR REPLACE FUNCTION public_certificate(p_tenant uuid, p_id text)
RETURNS TABLE (revoked boolean, pdf bytea)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
  SELECT r.state = 'REVOKED', CASE WHEN r.state = 'REVOKED' THEN NULL ELSE c.pdf END
  FROM public.certificates c
  JOIN public.records r ON r.tenant_id = c.tenant_id AND r.id = c.record_id
  WHERE c.tenant_id = p_tenant AND c.id = p_id
$$;
COMMENT ON FUNCTION public_certificate(uuid, text) IS
  'Public endpoints: the tenant''s certificate p_id: whether its record was revoked, and its '
  'PDF unless it was (NULL then); no row when there is none.';
REVOKE ALL ON FUNCTION public_certificate(uuid, text) FROM PUBLIC;
SELECT grant_public('EXECUTE', 'FUNCTION public_certificate(uuid, text)');
