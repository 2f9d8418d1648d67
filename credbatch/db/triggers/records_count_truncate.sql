-- TRUNCATE fires no row or transition-table trigger: empty the counts with the records.
CREATE OR REPLACE TRIGGER records_count_truncate
  AFTER TRUNCATE ON records
  FOR EACH STATEMENT EXECUTE FUNCTION records_count_truncate();
