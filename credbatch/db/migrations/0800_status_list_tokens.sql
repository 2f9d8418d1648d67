-- 0800: least privilege for the public component. Status list tokens are signed by the
-- issuance workers (which hold the KEK) and stored here; the public endpoints only read them.
-- Claim links get an expiry of their own.

CREATE TABLE status_list_tokens (
  tenant_id  uuid        NOT NULL,
  list_id    uuid        NOT NULL,
  token      text,
  expires_at timestamptz,
  due_at     timestamptz NOT NULL DEFAULT now(),
  signed_at  timestamptz,
  PRIMARY KEY (tenant_id, list_id),
  FOREIGN KEY (tenant_id, list_id) REFERENCES status_lists (tenant_id, id),
  CHECK ((token IS NULL) = (expires_at IS NULL))
);
COMMENT ON TABLE status_list_tokens IS
  'The signed statuslist+jwt of each status list, as served by the public endpoints. token '
  'is NULL until first signed. due_at is when it must be signed again: now() when the list '
  'is created or its bits change (triggers below), otherwise ttl seconds before expires_at '
  '(the token exp), so a served token stays valid for at least its own ttl claim. Issuance '
  'workers re-sign due rows, each row locked FOR UPDATE SKIP LOCKED by one worker.';
CREATE INDEX status_list_tokens_due_idx ON status_list_tokens (due_at);
ALTER TABLE status_list_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_list_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY status_list_tokens_isolation ON status_list_tokens
  USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
SELECT grant_app('SELECT, INSERT, UPDATE', 'TABLE status_list_tokens');

-- Every list gets its token row, and a change of its bits makes the token due at once,
-- whoever writes the list (the allocator, a revocation, an operator's SQL).
CREATE FUNCTION status_list_tokens_track() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO public.status_list_tokens (tenant_id, list_id)
    VALUES (NEW.tenant_id, NEW.id) ON CONFLICT DO NOTHING;
  ELSE
    UPDATE public.status_list_tokens SET due_at = now()
    WHERE tenant_id = NEW.tenant_id AND list_id = NEW.id;
  END IF;
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION status_list_tokens_track() IS
  'Trigger of status_lists: inserts the token row of a new list, makes it due when bits change.';
CREATE TRIGGER status_lists_token_row AFTER INSERT ON status_lists
  FOR EACH ROW EXECUTE FUNCTION status_list_tokens_track();
CREATE TRIGGER status_lists_bits_changed AFTER UPDATE OF bits ON status_lists
  FOR EACH ROW WHEN (OLD.bits IS DISTINCT FROM NEW.bits)
  EXECUTE FUNCTION status_list_tokens_track();

INSERT INTO status_list_tokens (tenant_id, list_id) SELECT tenant_id, id FROM status_lists;

-- The refresher serves every tenant, so it cannot find due rows under one tenant's RLS scope.
-- This SECURITY DEFINER function is its only cross-tenant access and returns ids only; the
-- signing itself happens in the tenant's own transaction.
CREATE FUNCTION status_list_tokens_due(p_limit integer)
RETURNS TABLE (tenant_id uuid, list_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
  SELECT t.tenant_id, t.list_id FROM public.status_list_tokens t
  WHERE t.due_at <= now()
  ORDER BY t.due_at
  LIMIT greatest(coalesce(p_limit, 0), 0)
$$;
COMMENT ON FUNCTION status_list_tokens_due(integer) IS
  'Refresher: up to p_limit status lists of all tenants whose token is due, most overdue first.';
REVOKE ALL ON FUNCTION status_list_tokens_due(integer) FROM PUBLIC;
SELECT grant_app('EXECUTE', 'FUNCTION status_list_tokens_due(integer)');

-- Existing links get the default 30 days from their issuance; the default covers a writer
-- that does not set the column.
ALTER TABLE credentials ADD COLUMN claim_expires_at timestamptz;
UPDATE credentials SET claim_expires_at = created_at + interval '30 days';
ALTER TABLE credentials
  ALTER COLUMN claim_expires_at SET DEFAULT now() + interval '30 days',
  ALTER COLUMN claim_expires_at SET NOT NULL;
COMMENT ON COLUMN credentials.claim_expires_at IS
  'When the holder''s claim link stops working (the public endpoints answer 410 Gone): '
  'issuance sets it from CREDBATCH_CLAIM_TTL.';
