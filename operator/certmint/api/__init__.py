"""The custom resources, parsed once at the edge into frozen values (pure; no I/O)."""
