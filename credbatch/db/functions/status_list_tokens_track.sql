-- Every list gets its token row, and a change of its bits makes the token due at once,
-- whoever writes the list (the allocator, a revocation, an operator's SQL): triggers
-- status_lists_token_row and status_lists_bits_changed. SECURITY INVOKER: it writes the
-- token row of the list the caller just wrote, under the caller's RLS. No REVOKE: a trigger
-- function cannot be called except as a trigger.
CREATE OR REPLACE FUNCTION status_list_tokens_track() RETURNS trigger
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
