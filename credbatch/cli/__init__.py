"""The `credbatch` command line."""
