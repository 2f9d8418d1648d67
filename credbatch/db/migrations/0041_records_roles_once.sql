-- The records policy's "an org admin or a service sees every record of its tenant" test reads
-- the caller's roles (app.roles, parsed from text into an array) and compares arrays: written
-- as a plain expression, PostgreSQL evaluates it again for every record a read returns, about
-- half of a report page's scan (0.4-0.8 µs a record, bench/RESULTS.md "DownloadBatchReport,
-- third pass"). The roles cannot change within a statement, so the test is written as a
-- subquery of its own, which the planner runs once per statement (an InitPlan) and every
-- record reuses. What the policy admits is unchanged.
ALTER POLICY records_select ON records
  USING (tenant_id = app_tenant() AND (
    (SELECT app_roles() && ARRAY['org_admin', 'service'])
    OR EXISTS (SELECT 1 FROM batches b
               WHERE b.tenant_id = records.tenant_id AND b.id = records.batch_id)));
