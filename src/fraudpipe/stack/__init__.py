"""Start, stop and check the local services fraudpipe needs (no Docker required)."""
