"""The synchronous scoring API (`fraudpipe serve`): one transaction in, a decision out."""
