-- The order in which delivery news replaces older news (public_email_deliveries,
-- public_sms_delivery): nothing or ACCEPTED, then DEFERRED (may still arrive), DELIVERED,
-- and the final refusals BOUNCED and FAILED, which a later success report cannot undo.
-- Executable by PUBLIC (no REVOKE): a pure function of its argument that reads nothing.
CREATE OR REPLACE FUNCTION delivery_rank(p_state text) RETURNS integer
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT CASE p_state WHEN 'DEFERRED' THEN 1 WHEN 'DELIVERED' THEN 2
                      WHEN 'BOUNCED' THEN 3 WHEN 'FAILED' THEN 3 ELSE 0 END
$$;
COMMENT ON FUNCTION delivery_rank(text) IS
  'Rank of a delivery state: ACCEPTED or none 0, DEFERRED 1, DELIVERED 2, BOUNCED and FAILED '
  '3; a report replaces a state of no higher rank.';
