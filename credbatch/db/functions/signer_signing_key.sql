-- The tenant's active signing key, wrapped under the KEK, for the signer, which holds the KEK
-- (credbatch.signing.keys unwraps it). The signer never creates a key: a stored credential
-- was signed by one, so its tenant has one.
CREATE OR REPLACE FUNCTION signer_signing_key(p_tenant uuid)
RETURNS TABLE (kid text, private_key_enc bytea, nonce bytea, kek_id text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
  SELECT k.kid, k.private_key_enc, k.nonce, k.kek_id FROM public.signing_keys k
  WHERE k.tenant_id = p_tenant AND k.active
$$;
COMMENT ON FUNCTION signer_signing_key(uuid) IS
  'Signer: the tenant''s active signing key (kid, wrapped private key, GCM nonce, KEK id).';
REVOKE ALL ON FUNCTION signer_signing_key(uuid) FROM PUBLIC;
SELECT grant_signer('EXECUTE', 'FUNCTION signer_signing_key(uuid)');
