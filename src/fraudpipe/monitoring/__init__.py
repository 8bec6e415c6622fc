"""Watching the model in production: drift of its inputs and scores, batch by batch."""
