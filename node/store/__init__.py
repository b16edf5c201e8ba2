"""Storage shell: a small key-value protocol (LevelDB via plyvel, or in memory) and the
chain store that commits a block, its receipts, state changes and indexes atomically."""
