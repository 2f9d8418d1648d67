-- The OID4VCI issuer metadata: one credential configuration per schema version of the tenant
-- (its attribute definitions and display name; no record's values).
CREATE OR REPLACE FUNCTION public_credential_configurations(p_tenant uuid)
RETURNS TABLE (schema_id uuid, version integer, attributes jsonb, display_name text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
  SELECT v.schema_id, v.version, v.attributes, s.display_name
  FROM public.credential_schema_versions v
  JOIN public.credential_schemas s ON s.tenant_id = v.tenant_id AND s.id = v.schema_id
  WHERE v.tenant_id = p_tenant
  ORDER BY s.display_name, v.schema_id, v.version
$$;
COMMENT ON FUNCTION public_credential_configurations(uuid) IS
  'Public endpoints: the tenant''s schema versions (ids, attribute definitions, display name) '
  'as OID4VCI credential configurations; none when the tenant issues nothing.';
REVOKE ALL ON FUNCTION public_credential_configurations(uuid) FROM PUBLIC;
SELECT grant_public('EXECUTE', 'FUNCTION public_credential_configurations(uuid)');
