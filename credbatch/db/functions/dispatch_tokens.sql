-- A token bucket read at p_now: NULL when p_rate is NULL (unlimited). The bucket holds half
-- a second of the rate (at least one record), so a tenant's burst stays small against its
-- limit (at most rate x (window + 0.5 s) in any window).
--
-- A plain SQL expression with no SET clause, so the planner inlines it into its caller's
-- expression; a SET clause would make every call a function call of its own, with the
-- setting saved and restored around it. It names no table, only built-in operators and
-- functions, which pg_catalog provides ahead of any schema.
CREATE OR REPLACE FUNCTION dispatch_tokens(p_tokens double precision, p_at timestamptz,
                                           p_rate double precision, p_now timestamptz)
RETURNS double precision
LANGUAGE sql IMMUTABLE
AS $$
  SELECT CASE WHEN p_rate IS NULL THEN NULL
    ELSE least(greatest(1, p_rate * 0.5),
               coalesce(p_tokens, greatest(1, p_rate * 0.5))
               + p_rate * greatest(0, extract(epoch FROM p_now - coalesce(p_at, p_now))))
  END
$$;
COMMENT ON FUNCTION dispatch_tokens(double precision, timestamptz, double precision,
                                    timestamptz) IS
  'Fair dispatch: the tokens of a bucket (p_tokens as of p_at) at p_now, refilled at p_rate '
  'per second up to half a second of it; NULL (unlimited) when p_rate is NULL.';
REVOKE ALL ON FUNCTION dispatch_tokens(double precision, timestamptz, double precision,
                                       timestamptz) FROM PUBLIC;
