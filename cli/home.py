"""Creating a node home and installing a genesis into it (used by `alps init`,
`alps genesis install` and `alps testnet`).

Rule kept here: a home is created once (config.toml and the validator key are never
overwritten), and a genesis is installed only if it is for the home's chain; installing
pins its hash in config.toml, after which the node loads no other genesis.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Mapping
from dataclasses import dataclass

from node.config import (
    ApiSettings,
    NodeConfig,
    NodeSettings,
    P2PSettings,
    load_config,
    write_atomic,
    write_config,
)
from node.errors import SetupError
from node.genesis_file import GenesisFileError, genesis_hash, read_genesis
from node.keys import KeyFileError, create_key_file, load_signer
from node.ledger import crypto
from node.ledger.genesis import Genesis


class HomeError(SetupError):
    """A home that already exists, or a genesis that does not fit the home."""


def p2p_multiaddr(port: int, host: str = "127.0.0.1") -> str:
    return f"/ip4/{host}/tcp/{port}"


def new_config(
    home: pathlib.Path,
    moniker: str,
    chain_id: str,
    p2p_port: int,
    api_port: int,
    peers: Mapping[bytes, str] | None = None,
) -> NodeConfig:
    """The config of a fresh home: the public API on `api_port`, admin on `api_port + 1`."""
    return NodeConfig(
        home=home.absolute(),
        node=NodeSettings(moniker=moniker, chain_id=chain_id),
        p2p=P2PSettings(listen=p2p_multiaddr(p2p_port), peers=dict(peers or {})),
        api=ApiSettings(listen=f"127.0.0.1:{api_port}", admin_listen=f"127.0.0.1:{api_port + 1}"),
    )


def init_home(cfg: NodeConfig) -> crypto.Signer:
    """Create `cfg.home`, its validator key (0600) and config.toml; refuse an existing one."""
    if cfg.config_path.exists():
        raise HomeError(str(cfg.config_path), "already exists; refusing to re-initialise")
    cfg.home.mkdir(parents=True, exist_ok=True, mode=0o700)
    signer = create_key_file(cfg.key_path)
    try:
        write_config(cfg, exclusive=True)
    except FileExistsError as exc:
        raise HomeError(str(cfg.config_path), "already exists") from exc
    return signer


@dataclass(frozen=True, slots=True)
class Installed:
    config: NodeConfig
    genesis: Genesis
    genesis_hash: str
    warning: str  # "" or why this node will not validate


def install_genesis(home: pathlib.Path, source: pathlib.Path, *, force: bool = False) -> Installed:
    """Copy the genesis file `source` into `home` and pin its hash in config.toml."""
    cfg = load_config(home)
    genesis = read_genesis(source)
    digest = genesis_hash(genesis)
    if genesis.chain_id != cfg.node.chain_id:
        raise HomeError(
            str(source),
            f"genesis is for chain {genesis.chain_id!r}, the home for {cfg.node.chain_id!r}",
        )
    pinned = cfg.node.genesis_hash
    if pinned not in ("", digest) and not force:
        raise HomeError(
            str(cfg.config_path),
            f"another genesis ({pinned}) is installed; pass --force to replace it",
        )
    if source.resolve() != cfg.genesis_path.resolve():
        try:
            write_atomic(cfg.genesis_path, source.read_bytes())
        except OSError as exc:
            raise GenesisFileError(str(cfg.genesis_path), f"cannot write: {exc}") from exc
    new_cfg = cfg.with_genesis_hash(digest)
    write_config(new_cfg)
    return Installed(new_cfg, genesis, digest, _validator_warning(new_cfg, genesis))


def _validator_warning(cfg: NodeConfig, genesis: Genesis) -> str:
    try:
        key = load_signer(cfg.key_path).public_key
    except KeyFileError as exc:
        return f"cannot read this node's key ({exc}); it may not be a validator"
    if key not in genesis.validators:
        return f"this node's key {key.hex()} is not a validator in this genesis"
    return ""


def with_peers(cfg: NodeConfig, peers: Mapping[bytes, str]) -> NodeConfig:
    return dataclasses.replace(cfg, p2p=dataclasses.replace(cfg.p2p, peers=dict(peers)))
