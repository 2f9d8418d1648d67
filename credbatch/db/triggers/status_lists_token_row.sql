-- Every status list gets its status_list_tokens row, due at once, whoever creates the list.
CREATE OR REPLACE TRIGGER status_lists_token_row AFTER INSERT ON status_lists
  FOR EACH ROW EXECUTE FUNCTION status_list_tokens_track();
