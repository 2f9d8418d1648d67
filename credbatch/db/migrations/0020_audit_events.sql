-- The audit trail: one row per action of a caller that changes something (an upload, a
-- cancel, a template created, a webhook secret rotated, ...), and per such action refused.
--
-- Append-only for everyone but the owner: the application role may INSERT and SELECT (its own
-- tenant's rows, under row-level security) and holds no UPDATE, DELETE or TRUNCATE; the
-- triggers audit_events_refuse_change and audit_events_refuse_truncate refuse those to every
-- role but the owner anyway, so a grant added by mistake still changes nothing. The owner
-- deletes only through audit_prune, which removes rows older than the audit retention period.
--
-- No personal data in clear: actor is the caller token's subject (or a system component's
-- name), resource a resource name built of ids, details counts, field names and ids
-- (credbatch.audit refuses strings that could carry an address or a phone number).
CREATE TABLE audit_events (
  tenant_id   uuid        NOT NULL REFERENCES tenants (id),
  id          uuid        NOT NULL,
  occurred_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  actor       text        NOT NULL CHECK (length(actor) BETWEEN 1 AND 256),
  actor_kind  text        NOT NULL CHECK (actor_kind IN ('USER', 'SERVICE', 'SYSTEM')),
  action      text        NOT NULL CHECK (action ~ '^[a-z][a-z_]*(\.[a-z][a-z_]*)+$'),
  resource    text        NOT NULL CHECK (length(resource) <= 512),
  -- 'OK', or the reason of the error that refused the action (an ErrorInfo reason).
  outcome     text        NOT NULL CHECK (outcome ~ '^[A-Z][A-Z0-9_]*$'),
  request_id  text        NOT NULL DEFAULT '' CHECK (length(request_id) <= 128),
  trace_id    text        NOT NULL DEFAULT '' CHECK (trace_id ~ '^([0-9a-f]{32})?$'),
  details     jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(details) = 'object'),
  PRIMARY KEY (tenant_id, id)
);
COMMENT ON TABLE audit_events IS
  'The audit trail: who (actor, actor_kind) did what (action) to which resource, when, and '
  'with which outcome (OK or the refusal''s reason). Append-only: only audit_prune (as the '
  'owner) deletes, rows older than the audit retention period; nothing updates.';
ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_events FORCE ROW LEVEL SECURITY;
CREATE POLICY audit_events_isolation ON audit_events
  USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
-- audit_prune runs as the owner and deletes across tenants.
DO $$
BEGIN
  EXECUTE format('CREATE POLICY audit_events_owner ON audit_events FOR ALL TO %I '
                 'USING (true) WITH CHECK (true)', current_user);
END
$$;
SELECT grant_app('SELECT, INSERT', 'TABLE audit_events');
-- ListAuditEvents: a tenant's entries newest first, by time range.
CREATE INDEX audit_events_list_idx ON audit_events (tenant_id, occurred_at DESC, id DESC);
-- audit_prune: the oldest entries of every tenant first.
CREATE INDEX audit_events_age_idx ON audit_events (occurred_at);
