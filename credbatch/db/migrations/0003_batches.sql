-- Batches (one CSV upload), records (one CSV row each; PENDING rows are the job outbox) and
-- the record counts per batch and state. Visibility by role is enforced here, by RLS, not
-- only in the services.

CREATE TABLE batches (
  tenant_id                   uuid        NOT NULL REFERENCES tenants (id),
  id                          uuid        NOT NULL,
  schema_id                   uuid        NOT NULL,
  schema_version              integer     NOT NULL,
  mediums                     text[]      NOT NULL
    CHECK (cardinality(mediums) >= 1 AND mediums <@ ARRAY['EMAIL', 'SMS']),
  email_template_id           uuid,
  sms_template_id             uuid,
  certificate_template_id     uuid,
  creator                     text        NOT NULL,
  department                  text        NOT NULL,
  filename                    text        NOT NULL DEFAULT '',
  total_records               integer     NOT NULL CHECK (total_records >= 0),
  state                       text        NOT NULL DEFAULT 'QUEUED'
    CHECK (state IN ('QUEUED', 'IN_PROGRESS', 'COMPLETED', 'COMPLETED_WITH_ERRORS',
                     'CANCELLED', 'FAILED')),
  credential_validity_seconds bigint      CHECK (credential_validity_seconds > 0),
  traceparent                 text,
  created_at                  timestamptz NOT NULL DEFAULT now(),
  updated_at                  timestamptz NOT NULL DEFAULT now(),
  completed_at                timestamptz,
  cancelled_at                timestamptz,
  claim_mode                  text        NOT NULL DEFAULT 'OID4VCI'
    CHECK (claim_mode IN ('OID4VCI', 'DOWNLOAD')),
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, schema_id, schema_version)
    REFERENCES credential_schema_versions (tenant_id, schema_id, version),
  FOREIGN KEY (tenant_id, email_template_id) REFERENCES email_templates (tenant_id, id),
  FOREIGN KEY (tenant_id, sms_template_id) REFERENCES sms_templates (tenant_id, id),
  FOREIGN KEY (tenant_id, certificate_template_id)
    REFERENCES certificate_templates (tenant_id, id),
  CHECK (email_template_id IS NULL OR 'EMAIL' = ANY (mediums)),
  CHECK (sms_template_id IS NULL OR 'SMS' = ANY (mediums))
);
COMMENT ON TABLE batches IS
  'One accepted CSV upload (batches/{id}): the schema version and templates it was issued '
  'with (resolved at upload: a default template is stored by id), who uploaded it and for '
  'which department. Rows are never deleted: this is the upload history. Visible (RLS) to '
  'org_admin and service in the tenant, to an issuer when it is the creator, to an observer '
  'when the department is one of its own; updatable by org_admin, service and the creating '
  'issuer (observers are read-only).';
COMMENT ON COLUMN batches.creator IS 'Token sub of the uploader; equals app_user() on insert.';
COMMENT ON COLUMN batches.department IS 'Department the batch belongs to (observer visibility).';
COMMENT ON COLUMN batches.credential_validity_seconds IS
  'Credential lifetime for this batch (from the schema version unless overridden); NULL = no exp.';
COMMENT ON COLUMN batches.traceparent IS
  'W3C trace context of the upload RPC; the outbox relay links every record''s job to it.';
COMMENT ON COLUMN batches.completed_at IS
  'When the batch reached COMPLETED, COMPLETED_WITH_ERRORS or FAILED.';
COMMENT ON COLUMN batches.claim_mode IS
  'How holders receive their credential: OID4VCI (a credential offer to a wallet, the '
  'credential bound to the wallet''s key) or DOWNLOAD (the bearer claim page download).';
-- Keyset paging of the history: ORDER BY created_at DESC, id DESC, for each visibility path.
CREATE INDEX batches_created_idx ON batches (tenant_id, created_at DESC, id DESC);
CREATE INDEX batches_creator_idx ON batches (tenant_id, creator, created_at DESC, id DESC);
CREATE INDEX batches_department_idx
  ON batches (tenant_id, department, created_at DESC, id DESC);
-- Batches cancelled lately, whose PENDING records the cancel may have left to the sweeper
-- (sweep_stuck; not led by tenant_id: the sweeper serves every tenant).
CREATE INDEX batches_cancelled_idx ON batches (cancelled_at) WHERE cancelled_at IS NOT NULL;
ALTER TABLE batches ENABLE ROW LEVEL SECURITY;
ALTER TABLE batches FORCE ROW LEVEL SECURITY;
CREATE POLICY batches_select ON batches FOR SELECT
  USING (tenant_id = app_tenant() AND (
    app_roles() && ARRAY['org_admin', 'service']
    OR ('issuer' = ANY (app_roles()) AND creator = app_user())
    OR ('observer' = ANY (app_roles()) AND department = ANY (app_departments()))));
CREATE POLICY batches_insert ON batches FOR INSERT
  WITH CHECK (tenant_id = app_tenant() AND creator = app_user() AND (
    app_roles() && ARRAY['org_admin', 'service']
    OR ('issuer' = ANY (app_roles()) AND department = ANY (app_departments()))));
CREATE POLICY batches_update ON batches FOR UPDATE
  USING (tenant_id = app_tenant() AND (
    app_roles() && ARRAY['org_admin', 'service']
    OR ('issuer' = ANY (app_roles()) AND creator = app_user())))
  WITH CHECK (tenant_id = app_tenant() AND (
    app_roles() && ARRAY['org_admin', 'service']
    OR ('issuer' = ANY (app_roles()) AND creator = app_user())));
SELECT grant_app('SELECT, INSERT, UPDATE', 'TABLE batches');

CREATE TABLE records (
  tenant_id     uuid        NOT NULL,
  id            uuid        NOT NULL,
  batch_id      uuid        NOT NULL,
  row_number    integer     NOT NULL CHECK (row_number >= 1),
  state         text        NOT NULL DEFAULT 'PENDING'
    CHECK (state IN ('PENDING', 'QUEUED', 'ISSUED', 'INVITED', 'FAILED', 'CANCELLED',
                     'CLAIMED', 'REVOKED')),
  email         text,
  phone         text        CHECK (phone ~ '^\+[1-9][0-9]{1,14}$'),
  attributes    jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(attributes) = 'object'),
  attempt       integer     NOT NULL DEFAULT 0 CHECK (attempt >= 0),
  error_code    text,
  error_message text,
  email_sent_at timestamptz,
  sms_sent_at   timestamptz,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  queued_at     timestamptz,
  issued_at     timestamptz,
  invited_at    timestamptz,
  claimed_at    timestamptz,
  revoke_reason text        CHECK (length(revoke_reason) BETWEEN 1 AND 500),
  revoked_at    timestamptz,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, batch_id, row_number),
  FOREIGN KEY (tenant_id, batch_id) REFERENCES batches (tenant_id, id)
);
COMMENT ON TABLE records IS
  'One CSV row of a batch and its issuance state. Rows in state PENDING are the job outbox: '
  'the upload writes them in the batch''s transaction and the relay publishes one job per '
  'row (outbox_claim / outbox_mark_queued), so nothing is published for an upload that '
  'rolled back. Visibility follows the batch (RLS); writable by whoever may update the batch.';
COMMENT ON COLUMN records.row_number IS '1-based data row number in the CSV (header excluded).';
COMMENT ON COLUMN records.phone IS 'Recipient phone normalised to E.164, when SMS is a medium.';
COMMENT ON COLUMN records.attributes IS
  'Normalised, typed attribute values keyed by schema attribute name (dates as ISO strings).';
COMMENT ON COLUMN records.attempt IS 'Delivery attempt of the current job (0 = first).';
COMMENT ON COLUMN records.email_sent_at IS
  'Set when the email invitation was accepted by SMTP: a redelivered job does not send twice.';
COMMENT ON COLUMN records.sms_sent_at IS
  'Set when the SMS provider accepted the invitation: a redelivered job does not send twice.';
COMMENT ON COLUMN records.revoke_reason IS
  'Why the record''s credential was revoked (RevokeRecords); set with state REVOKED.';
COMMENT ON COLUMN records.revoked_at IS 'When the record''s credential was revoked.';
-- Per-state reports of one batch.
CREATE INDEX records_batch_state_idx ON records (tenant_id, batch_id, state);
-- The recent completions of a batch (the throughput estimate of GetBatch, ListBatches and
-- WatchBatch: a short backward range per terminal state) and the oldest PENDING record of a
-- batch (outbox_backlog) come from this index alone (index-only scans). It costs one more
-- index entry per record state change, which records_batch_state_idx already makes a non-HOT
-- update.
CREATE INDEX records_progress_idx ON records (tenant_id, batch_id, state, updated_at);
-- The outbox, read by the fair claim per (tenant, batch) in CSV row order. Partial, so it
-- holds only what is still to publish.
CREATE INDEX records_dispatch_idx ON records (tenant_id, batch_id, row_number)
  WHERE state = 'PENDING';
-- A batch's records in flight (QUEUED). The claim's in-flight caps count dispatch_in_flight
-- instead, which vacuum keeps small (0005_dispatch.sql says why).
CREATE INDEX records_in_flight_idx ON records (tenant_id, batch_id) WHERE state = 'QUEUED';
-- Stale open records for the sweeper (sweep_stuck), across tenants (not led by tenant_id:
-- the sweeper serves every tenant); small (records in flight only) and read oldest first.
CREATE INDEX records_stuck_idx ON records (updated_at) WHERE state IN ('QUEUED', 'ISSUED');
ALTER TABLE records ENABLE ROW LEVEL SECURITY;
ALTER TABLE records FORCE ROW LEVEL SECURITY;
-- The sub-selects on batches are themselves filtered by the batches policies.
CREATE POLICY records_select ON records FOR SELECT
  USING (tenant_id = app_tenant() AND EXISTS (
    SELECT 1 FROM batches b WHERE b.tenant_id = records.tenant_id AND b.id = records.batch_id));
CREATE POLICY records_insert ON records FOR INSERT
  WITH CHECK (tenant_id = app_tenant() AND EXISTS (
    SELECT 1 FROM batches b
    WHERE b.tenant_id = records.tenant_id AND b.id = records.batch_id AND (
      app_roles() && ARRAY['org_admin', 'service']
      OR ('issuer' = ANY (app_roles()) AND b.creator = app_user()))));
CREATE POLICY records_update ON records FOR UPDATE
  USING (tenant_id = app_tenant() AND EXISTS (
    SELECT 1 FROM batches b
    WHERE b.tenant_id = records.tenant_id AND b.id = records.batch_id AND (
      app_roles() && ARRAY['org_admin', 'service']
      OR ('issuer' = ANY (app_roles()) AND b.creator = app_user()))))
  WITH CHECK (tenant_id = app_tenant() AND EXISTS (
    SELECT 1 FROM batches b
    WHERE b.tenant_id = records.tenant_id AND b.id = records.batch_id AND (
      app_roles() && ARRAY['org_admin', 'service']
      OR ('issuer' = ANY (app_roles()) AND b.creator = app_user()))));
SELECT grant_app('SELECT, INSERT, UPDATE', 'TABLE records');

-- The owner (which runs migrations and owns the SECURITY DEFINER functions of the relay and
-- the sweeper) reads batches and claims records across tenants. FORCE ROW LEVEL SECURITY
-- applies RLS to a non-superuser owner too, so it gets its own policies; the application
-- role is never a member of the owner role.
DO $$
BEGIN
  EXECUTE format('CREATE POLICY batches_owner ON batches FOR SELECT TO %I USING (true)',
                 current_user);
  EXECUTE format('CREATE POLICY records_owner_select ON records FOR SELECT TO %I USING (true)',
                 current_user);
  EXECUTE format('CREATE POLICY records_owner_update ON records FOR UPDATE TO %I '
                 'USING (true) WITH CHECK (true)', current_user);
END
$$;

-- The record lifecycle: every legal change of records.state, as data. The trigger
-- records_state_guard refuses any other; credbatch.batches.lifecycle holds the same pairs for
-- Python readers (a test keeps the two equal) and docs/architecture.md draws them. A change
-- of the lifecycle is a new migration that inserts or deletes rows here.
CREATE TABLE record_transitions (
  from_state text NOT NULL,
  to_state   text NOT NULL,
  why        text NOT NULL,
  PRIMARY KEY (from_state, to_state),
  CHECK (from_state <> to_state)
);
COMMENT ON TABLE record_transitions IS
  'The legal changes of records.state, one row each with who makes it and why; '
  'records_state_guard refuses every other. Not tenant data: every role may read it.';
INSERT INTO record_transitions (from_state, to_state, why) VALUES
  ('PENDING', 'QUEUED', 'relay: the record''s job is confirmed by the broker'),
  ('PENDING', 'ISSUED', 'worker: a job reached it before the relay marked it QUEUED'),
  ('PENDING', 'FAILED', 'worker: it cannot be issued (bad data, template error)'),
  ('PENDING', 'CANCELLED', 'CancelBatch, or the sweeper for a cancelled batch'),
  ('QUEUED', 'PENDING', 'sweeper: its job was lost; the relay publishes it again'),
  ('QUEUED', 'ISSUED', 'worker: its credential is stored'),
  ('QUEUED', 'FAILED', 'worker: it cannot be issued; or its job was dead-lettered'),
  ('QUEUED', 'CANCELLED', 'CancelBatch, or the sweeper for a cancelled batch'),
  ('ISSUED', 'INVITED', 'worker: every invitation was accepted'),
  ('ISSUED', 'FAILED', 'worker: an invitation failed for good; or its job was dead-lettered'),
  ('ISSUED', 'CANCELLED', 'worker or sweeper: its batch was cancelled before the invitations'),
  ('ISSUED', 'CLAIMED', 'holder: a wallet took it before the invitation was recorded'),
  ('ISSUED', 'REVOKED', 'RevokeRecords'),
  ('INVITED', 'CLAIMED', 'holder: a wallet took the credential'),
  ('INVITED', 'REVOKED', 'RevokeRecords'),
  ('CLAIMED', 'REVOKED', 'RevokeRecords'),
  ('FAILED', 'PENDING', 'RetryFailedRecords');
SELECT grant_app('SELECT', 'TABLE record_transitions');

-- Record counts per batch and state, kept incrementally, so a progress read costs the same for
-- a batch of ten records and one of a million.
--
-- Writers never update a shared row. Every statement that changes records (INSERT, UPDATE,
-- DELETE, whichever function or role runs it) appends, from a STATEMENT-level trigger over
-- its transition tables (records_count_changes), one signed row per (batch, state) it changed
-- to batch_count_deltas: a group of 500 records moving QUEUED -> ISSUED adds two rows
-- (+500 ISSUED, -500 QUEUED). Workers in several processes only ever insert distinct rows,
-- so they neither wait for each other nor hold a lock that a reader or another worker needs.
-- The deltas become visible with the records they describe (same transaction).
--
-- A batch's counts are the sum of its rows in batch_counts (one per state) and in
-- batch_count_deltas, read in one statement (one snapshot). batch_counts_fold moves the
-- deltas into batch_counts in one statement (DELETE ... RETURNING feeding an upsert), so a
-- reader sees either the deltas or their fold, never both or neither; a delta committed
-- after the fold's snapshot is not deleted and is folded next time, and two folds never fold
-- the same delta (the second finds it deleted and skips it).
--
-- Both tables carry no personal data; readers reach them only through the batches row they
-- may see (RLS on batches), so their policy is the tenant alone.

CREATE TABLE batch_count_deltas (
  tenant_id   uuid        NOT NULL,
  batch_id    uuid        NOT NULL,
  id          bigint      GENERATED ALWAYS AS IDENTITY,
  state       text        NOT NULL,
  n           bigint      NOT NULL,
  last_update timestamptz,
  PRIMARY KEY (tenant_id, batch_id, id)
);
COMMENT ON TABLE batch_count_deltas IS
  'Signed changes of the number of a batch''s records per state, one row per (batch, state) '
  'per statement that changed records (appended by the records_count_* triggers, never '
  'updated). Folded into batch_counts by batch_counts_fold.';
COMMENT ON COLUMN batch_count_deltas.last_update IS
  'Latest records.updated_at among the records that entered the state (NULL for the rows '
  'that count records leaving it).';
ALTER TABLE batch_count_deltas ENABLE ROW LEVEL SECURITY;
ALTER TABLE batch_count_deltas FORCE ROW LEVEL SECURITY;
CREATE POLICY batch_count_deltas_isolation ON batch_count_deltas FOR SELECT
  USING (tenant_id = app_tenant());
SELECT grant_app('SELECT', 'TABLE batch_count_deltas');

CREATE TABLE batch_counts (
  tenant_id   uuid        NOT NULL,
  batch_id    uuid        NOT NULL,
  state       text        NOT NULL,
  n           bigint      NOT NULL,
  last_update timestamptz,
  PRIMARY KEY (tenant_id, batch_id, state)
);
COMMENT ON TABLE batch_counts IS
  'Folded record counts per batch and state: plus the batch''s rows in batch_count_deltas, '
  'the number of its records in each state. Written only by batch_counts_fold.';
COMMENT ON COLUMN batch_counts.last_update IS
  'Latest records.updated_at of a record entering this state, as far as folded.';
ALTER TABLE batch_counts ENABLE ROW LEVEL SECURITY;
ALTER TABLE batch_counts FORCE ROW LEVEL SECURITY;
CREATE POLICY batch_counts_isolation ON batch_counts FOR SELECT
  USING (tenant_id = app_tenant());
SELECT grant_app('SELECT', 'TABLE batch_counts');

-- Only the owner writes both tables: the trigger and fold functions are SECURITY DEFINER, so
-- the count rows are written the same way whoever changed the records (an application role
-- transaction under RLS, or the relay's SECURITY DEFINER functions running as the owner with
-- no tenant set), and the application role cannot write a count that no record change
-- produced.
DO $$
BEGIN
  EXECUTE format('CREATE POLICY batch_count_deltas_owner ON batch_count_deltas TO %I '
                 'USING (true) WITH CHECK (true)', current_user);
  EXECUTE format('CREATE POLICY batch_counts_owner ON batch_counts TO %I '
                 'USING (true) WITH CHECK (true)', current_user);
END
$$;
