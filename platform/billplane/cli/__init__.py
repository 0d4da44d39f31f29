"""The `billplane` command line."""
