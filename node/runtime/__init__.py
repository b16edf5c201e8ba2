"""The node daemon (trio): one driver task owns the PBFT replica and applies each `Ready`
in order; around it the mempool, the HTTP API, the ticker and start-up replay."""
