"""Performance harness of mcbo (not installed; run the scripts from the repository root)."""
