"""Validator-to-validator network: libp2p host (`host.py`), the consortium allow-list,
batch framing (`framing.py`), key mapping (`identity.py`) and an in-memory twin
(`memory.py`). Each implements `node.runtime.interface.PeerNetwork`.

`host.py` imports libp2p (slow, heavy); import it only where the real network is wanted.
"""
