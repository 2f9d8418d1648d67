-- A change of a list's bits (a revocation, an operator's SQL) makes its token due at once,
-- so the workers sign the new bits on their next refresh pass.
CREATE OR REPLACE TRIGGER status_lists_bits_changed AFTER UPDATE OF bits ON status_lists
  FOR EACH ROW WHEN (OLD.bits IS DISTINCT FROM NEW.bits)
  EXECUTE FUNCTION status_list_tokens_track();
