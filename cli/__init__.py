"""The `alps` command-line interface."""
