"""Prefect flows: thin wiring of `fraudpipe` use cases to Prefect (deployed from `prefect.yaml`)."""
