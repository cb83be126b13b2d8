"""Stand-in for the ``vllm`` package: only the interfaces saeguard_attach touches (see ../README.md)."""
