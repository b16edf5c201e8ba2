"""The metered, sandboxed interpreter for licence rules (a restricted Python subset)."""
