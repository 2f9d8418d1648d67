"""The janitor: the retention purge of personal data and the pruning of what is kept only for
a while."""
