-- The type metadata document of a tenant's schema version, as its `vct` URL serves it: the
-- stored bytes exactly, so the digest credentials carry (vct#integrity) matches.
CREATE OR REPLACE FUNCTION public_type_metadata(p_tenant uuid, p_schema uuid, p_version integer)
RETURNS TABLE (document bytea)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
  SELECT m.document
  FROM public.schema_type_metadata m
  WHERE m.tenant_id = p_tenant AND m.schema_id = p_schema AND m.version = p_version
$$;
COMMENT ON FUNCTION public_type_metadata(uuid, uuid, integer) IS
  'Public endpoints: the stored SD-JWT VC Type Metadata of a schema version; no row before '
  'its first issuance.';
REVOKE ALL ON FUNCTION public_type_metadata(uuid, uuid, integer) FROM PUBLIC;
SELECT grant_public('EXECUTE', 'FUNCTION public_type_metadata(uuid, uuid, integer)');
