-- The public endpoints, the signer and the status list refresher connect as roles of their
-- own with no table privilege (credbatch.db.migrate, PROCESS_ROLES): they reach rows only
-- through SECURITY DEFINER functions (credbatch/db/functions/public_*, signer_*,
-- status_list_tokens_due), which run as the owner and name the tenant in every query.
-- FORCE ROW LEVEL SECURITY applies to a non-superuser owner too, so the owner gets a policy
-- on each table those functions read or write, as 0003, 0005 and 0007 give it on theirs.
-- The application role's policies and grants do not change.
DO $$
BEGIN
  EXECUTE format('CREATE POLICY signing_keys_owner ON signing_keys FOR SELECT TO %I '
                 'USING (true)', current_user);
  EXECUTE format('CREATE POLICY status_list_tokens_owner ON status_list_tokens FOR SELECT '
                 'TO %I USING (true)', current_user);
  EXECUTE format('CREATE POLICY credentials_owner ON credentials FOR SELECT TO %I '
                 'USING (true)', current_user);
  EXECUTE format('CREATE POLICY certificates_owner ON certificates FOR SELECT TO %I '
                 'USING (true)', current_user);
  EXECUTE format('CREATE POLICY credential_schemas_owner ON credential_schemas FOR SELECT '
                 'TO %I USING (true)', current_user);
  EXECUTE format('CREATE POLICY credential_schema_versions_owner ON credential_schema_versions '
                 'FOR SELECT TO %I USING (true)', current_user);
  EXECUTE format('CREATE POLICY oid4vci_offers_owner ON oid4vci_offers TO %I '
                 'USING (true) WITH CHECK (true)', current_user);
  EXECUTE format('CREATE POLICY oid4vci_access_tokens_owner ON oid4vci_access_tokens TO %I '
                 'USING (true) WITH CHECK (true)', current_user);
  EXECUTE format('CREATE POLICY oid4vci_nonces_owner ON oid4vci_nonces TO %I '
                 'USING (true) WITH CHECK (true)', current_user);
END
$$;
