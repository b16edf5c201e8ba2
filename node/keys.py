"""Key files: an Ed25519 seed and its public key in JSON that only the owner can read.

Format: {"type": "ed25519", "seed": "<64 hex>", "public_key": "<64 hex>"}.
Rule kept here: a key file is created with O_CREAT|O_EXCL and mode 0600, so an existing
key is never overwritten and is never readable by others, and it is loaded only if it is
still private (no group/other permission bits), well formed, and its public key is the
one its seed derives. The same file serves validators (their libp2p identity too) and
consortium members who are not validators.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
from typing import Any

from node.errors import SetupError
from node.ledger import crypto

KEY_TYPE = "ed25519"
KEY_FILE_BYTES_MAX = 4096
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class KeyFileError(SetupError):
    """A key file that is missing, already exists, is readable by others, or is malformed."""

    def __init__(self, path: str | os.PathLike[str], detail: str) -> None:
        super().__init__(str(path), detail)
        self.path = pathlib.Path(path)


def key_document(seed: bytes) -> dict[str, str]:
    signer = crypto.Signer(seed)
    return {"type": KEY_TYPE, "seed": seed.hex(), "public_key": signer.public_key.hex()}


def create_key_file(path: str | os.PathLike[str], seed: bytes | None = None) -> crypto.Signer:
    """Create a new key at `path` (mode 0600; parent directories 0700 if missing).
    `seed` defaults to 32 bytes from os.urandom. Refuses to overwrite an existing file."""
    path = pathlib.Path(path)
    seed = os.urandom(crypto.SEED_BYTES) if seed is None else seed
    data = (json.dumps(key_document(seed), indent=2) + "\n").encode()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise KeyFileError(path, "already exists; refusing to overwrite a key") from exc
    except OSError as exc:
        raise KeyFileError(path, f"cannot create: {exc.strerror or exc}") from exc
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)  # the umask may have removed bits, never added any
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return crypto.Signer(seed)


def load_signer(path: str | os.PathLike[str]) -> crypto.Signer:
    """The signer in the key file at `path`; KeyFileError if it is not private and valid."""
    path = pathlib.Path(path)
    try:
        with path.open("rb") as f:
            mode = os.fstat(f.fileno()).st_mode & 0o777
            data = f.read(KEY_FILE_BYTES_MAX + 1)
    except OSError as exc:
        raise KeyFileError(path, f"cannot read: {exc.strerror or exc}") from exc
    if mode & 0o077:
        raise KeyFileError(path, f"mode {mode:04o} lets others read the key; run: chmod 600 {path}")
    return crypto.Signer(_parse(path, data))


def _parse(path: pathlib.Path, data: bytes) -> bytes:
    if len(data) > KEY_FILE_BYTES_MAX:
        raise KeyFileError(path, "malformed key file: too large")
    try:
        doc: Any = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KeyFileError(path, f"malformed key file: not JSON ({exc})") from exc
    if not isinstance(doc, dict) or set(doc) != {"type", "seed", "public_key"}:
        raise KeyFileError(path, "malformed key file: expected type, seed and public_key")
    if doc["type"] != KEY_TYPE:
        raise KeyFileError(path, f"malformed key file: type must be {KEY_TYPE!r}")
    for name in ("seed", "public_key"):
        value = doc[name]
        if not isinstance(value, str) or not _HEX64.match(value):
            raise KeyFileError(path, f"malformed key file: {name} must be 64 lowercase hex")
    seed = bytes.fromhex(doc["seed"])
    if crypto.Signer(seed).public_key.hex() != doc["public_key"]:
        raise KeyFileError(path, "public_key does not match the seed")
    return seed
