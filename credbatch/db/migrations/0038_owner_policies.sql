-- FORCE ROW LEVEL SECURITY holds the owner, which the SECURITY DEFINER functions run as, to
-- policies too; a production owner is no superuser, so each table such a function reads needs
-- a policy of the owner's own. These three had none, and there:
--   oid4vci_superseded_offers  an old code after a resend answered 404 rather than 410, and the
--                              claim page derived generation 0's codes (public_offer, public_claim);
--   schema_type_metadata       every vct URL answered 404 (public_type_metadata);
--   record_sends               no SMS status callback found its send (public_sms_delivery), and
--                              the janitor pruned no send stamp (janitor_prune).
-- tests/db/test_owner_without_superuser.py checks the catalog for any further such table.
DO $$
BEGIN
  EXECUTE format('CREATE POLICY oid4vci_superseded_offers_owner ON oid4vci_superseded_offers '
                 'FOR SELECT TO %I USING (true)', current_user);
  EXECUTE format('CREATE POLICY schema_type_metadata_owner ON schema_type_metadata '
                 'FOR SELECT TO %I USING (true)', current_user);
  EXECUTE format('CREATE POLICY record_sends_owner ON record_sends '
                 'TO %I USING (true) WITH CHECK (true)', current_user);
END
$$;
