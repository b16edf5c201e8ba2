"""Errors raised while setting a node up from its files (config, key, genesis).

Rule kept here: every such error names what is wrong (`subject`: a config field, a file)
and says why in one line (`detail`), so the CLI and the daemon can print it as is.
"""

from __future__ import annotations


class SetupError(Exception):
    """Base of the errors of node/config.py, node/keys.py and node/genesis_file.py."""

    def __init__(self, subject: str, detail: str) -> None:
        super().__init__(f"{subject}: {detail}")
        self.subject = subject
        self.detail = detail
